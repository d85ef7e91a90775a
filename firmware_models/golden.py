"""Golden files for the toolchain's models: written through the model runtime, the same code the hub
and the devices check them with (``model_runtime.golden``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_runtime.golden import GOLDEN_FILE, golden_diffs
from model_runtime.golden import write_golden as write_arrays
from model_runtime.preprocessing import prepare
from shared.manifest import GoldenSpec, ModelManifest

from .evaluate import runtime_for

__all__ = ["GOLDEN_FILE", "check_golden", "write_golden"]


def write_golden(
    model_path: Path, manifest: ModelManifest, frame: np.ndarray | list[np.ndarray], atol: float = 0.05
) -> GoldenSpec:
    """Run ``frame`` (or each of several frames) through the model once; store inputs and outputs in
    ``golden.npz`` beside it."""
    frames = frame if isinstance(frame, list) else [frame]
    rt = runtime_for(model_path, manifest)
    return write_arrays(rt.infer, [prepare(f, manifest.input) for f in frames], Path(model_path).parent, atol)


def check_golden(model_path: Path, manifest: ModelManifest) -> float:
    """Largest absolute difference between the model's outputs now and the stored golden outputs."""
    if manifest.golden is None:
        raise ValueError(f"{manifest.ref}: manifest has no golden block")
    rt = runtime_for(model_path, manifest)
    return max(golden_diffs(rt.infer, manifest, Path(model_path).parent))
