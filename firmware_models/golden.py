"""Golden input/output pairs stored beside a model, for validation and the on-device self-test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.manifest import GoldenSpec, ModelManifest

from .evaluate import session
from .preprocess import prepare

GOLDEN_FILE = "golden.npz"


def write_golden(
    model_path: Path, manifest: ModelManifest, frame: np.ndarray, atol: float = 0.05
) -> GoldenSpec:
    """Run ``frame`` through the model once; store ``input_0`` and ``output_0..`` in ``golden.npz``."""
    sess = session(model_path)
    x = prepare(frame, manifest.input)
    outputs = sess.run(None, {sess.get_inputs()[0].name: x})
    arrays = {"input_0": x, **{f"output_{i}": o for i, o in enumerate(outputs)}}
    np.savez_compressed(model_path.parent / GOLDEN_FILE, **arrays)
    return GoldenSpec(file=GOLDEN_FILE, atol=atol)


def check_golden(model_path: Path, manifest: ModelManifest) -> float:
    """Largest absolute difference between the model's outputs now and the stored golden outputs."""
    if manifest.golden is None:
        raise ValueError(f"{manifest.ref}: manifest has no golden block")
    data = np.load(model_path.parent / manifest.golden.file)
    sess = session(model_path)
    outputs = sess.run(None, {sess.get_inputs()[0].name: data["input_0"]})
    return max(float(np.abs(o - data[f"output_{i}"]).max()) for i, o in enumerate(outputs))
