"""Response models of the rollout API (documented in /api/v1/openapi.json, checked by the tests)."""

from __future__ import annotations

from pydantic import BaseModel


class RolloutItem(BaseModel):
    id: str
    model: str | None
    state: str
    phase: str
    reason: str | None
    total: int
    done: int
    percent: float
    created_at: float
    rollback: bool
    shadow: bool


class RolloutList(BaseModel):
    items: list[RolloutItem]


class RolloutWave(BaseModel):
    index: int
    label: str
    total: int
    success: int
    failed: int
    counts: dict[str, int]
    percent: float
    status: str


class RolloutFailure(BaseModel):
    device_id: str
    state: str
    reason: str | None


class RolloutDevice(BaseModel):
    device_id: str
    wave: int
    state: str
    progress: float | None
    reason: str | None
    shadow: dict[str, float] | None
    updated_at: float


class RolloutOut(BaseModel):
    id: str
    model: str | None
    state: str
    phase: str
    reason: str | None
    target: str
    rollback: bool
    shadow: bool
    shadow_thresholds: dict[str, float] | None
    max_failure: float
    max_concurrent: int
    current_wave: int
    created_at: float
    updated_at: float
    total: int
    done: int
    percent: float
    counts: dict[str, int]
    waves: list[RolloutWave]
    failures: list[RolloutFailure]
    devices: list[RolloutDevice]


class ModelOut(BaseModel):
    ref: str
    name: str
    version: str
    kind: str
    device_scope: str | None  # the one device it may be offered to; null: any device
    sha256: str
    size_bytes: int
    model_sha256: str
    created_at: float
    signature_ok: bool | None  # the record verifies with the hub key (null: no key on this hub)


class ModelList(BaseModel):
    items: list[ModelOut]
