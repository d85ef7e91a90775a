"""onnxruntime sessions, set up one way for every runner: providers, threads, spinning, precision mode.

Precision mode is onnxruntime's ``session.x64quantprecision``: ``exact`` turns s8 weights into u8
(slower, never saturates on x86 CPUs without VNNI), ``fast`` never does, ``auto`` asks for it only
where the CPU needs it (``shared.int8_precision``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from shared.int8_precision import PRECISION_KEY, ort_session_config

log = logging.getLogger(__name__)

PrecisionMode = Literal["auto", "exact", "fast"]
PRECISION_MODES: tuple[PrecisionMode, ...] = ("auto", "exact", "fast")


@dataclass(frozen=True)
class SessionSettings:
    providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    threads: int = 1
    allow_spinning: bool = False
    precision: PrecisionMode = "auto"
    warmup_runs: int = 0


def precision_entries(mode: PrecisionMode) -> dict[str, str]:
    if mode == "auto":
        return ort_session_config()
    return {PRECISION_KEY: "1" if mode == "exact" else "0"}


def session_options(settings: SessionSettings) -> ort.SessionOptions:
    """Small-device defaults: few threads, no busy-wait spinning (it burns a core on a Pi for nothing)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spin = "1" if settings.allow_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    for key, value in precision_entries(settings.precision).items():
        opts.add_session_config_entry(key, value)
    opts.log_severity_level = 3
    return opts


def choose_providers(requested: list[str]) -> list[str]:
    """Requested providers that this onnxruntime build has, in order; CPU always last as the fallback."""
    available = ort.get_available_providers()
    chosen = [p for p in requested if p in available]
    missing = [p for p in requested if p not in available]
    if missing:
        log.warning("execution providers not available here: %s (have %s)", missing, available)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def open_session(model: str | Path | bytes, settings: SessionSettings | None = None) -> ort.InferenceSession:
    settings = settings or SessionSettings()
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source, sess_options=session_options(settings), providers=choose_providers(settings.providers)
    )


def overridable_initializers(session: ort.InferenceSession) -> list[str]:
    """Weights the export also lists as graph inputs: onnxruntime cannot fold them (2.5x slower on a
    real SSD export); ``python -m firmware_models import`` takes them out."""
    return [i.name for i in session.get_overridable_initializers()]
