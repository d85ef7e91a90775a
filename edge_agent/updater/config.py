"""Settings of the on-device updater (the ``updater:`` section of the agent config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthConfig(_Section):
    """The trial after a swap: the new model is committed only if it behaves on real frames."""

    min_inferences: Annotated[int, Field(ge=1)] = 50
    max_seconds: Annotated[float, Field(gt=0)] = 600.0
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    max_insane_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_latency_ms_p95: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="absolute budget; None = only the relative check below"
    )
    max_latency_ratio: Annotated[float, Field(gt=0)] | None = Field(
        default=4.0, description="candidate median latency may be at most this times the previous model's"
    )


class ShadowConfig(_Section):
    sample_rate: Annotated[float, Field(gt=0, le=1)] = 0.2
    report_every: Annotated[int, Field(ge=1)] = 20
    match_iou: Annotated[float, Field(gt=0, le=1)] = 0.3


class UpdaterConfig(_Section):
    enabled: bool = True
    store_dir: Path = Path("/var/lib/edgesight/models")
    hub_public_key: Path = Field(description="PEM of the hub's Ed25519 public key (cloud-hub keys init)")
    window: Annotated[int, Field(ge=1, le=256)] = Field(default=4, description="chunks in flight")
    request_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    progress_every: Annotated[float, Field(gt=0, le=1)] = 0.1
    health: HealthConfig = Field(default_factory=HealthConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
