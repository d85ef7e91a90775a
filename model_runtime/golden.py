"""Golden files: model inputs with the outputs they must give, beside the model (``golden.npz``).

Format: arrays ``input_0..`` (batches of model inputs) and ``output_0..`` (per input, the outputs in
the manifest's output order). Written by the toolchain, checked by the hub before it signs a model and
by the device before it runs one — all through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shared.manifest import GoldenSpec, ModelManifest

GOLDEN_FILE = "golden.npz"

Run = Callable[[np.ndarray], list[np.ndarray]]  # one input tensor → outputs in manifest order


class GoldenError(ValueError):
    """Golden outputs missing, unreadable, or not reproduced; the message says which."""


def _index(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def read_golden(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    try:
        with np.load(path) as npz:
            inputs = [npz[k] for k in sorted((k for k in npz.files if k.startswith("input_")), key=_index)]
            expected = [npz[k] for k in sorted((k for k in npz.files if k.startswith("output_")), key=_index)]
    except (OSError, ValueError) as exc:
        raise GoldenError(f"golden file {path}: {exc}") from None
    if not inputs or not expected:
        raise GoldenError(f"golden file {path.name} has no input_N / output_N arrays")
    return inputs, expected


def run_batched(run: Run, tensor: np.ndarray, manifest: ModelManifest) -> list[np.ndarray]:
    """Inputs batched beyond the model's fixed batch of 1 go row by row."""
    if tensor.shape[0] > 1 and manifest.input.shape[0] == 1:
        rows = [run(tensor[i : i + 1]) for i in range(tensor.shape[0])]
        return [np.concatenate([r[k] for r in rows], axis=0) for k in range(len(rows[0]))]
    return run(tensor)


def golden_diffs(run: Run, manifest: ModelManifest, folder: Path) -> list[float]:
    """Per golden output, the largest absolute difference from the outputs now; GoldenError when
    there is no golden file, inference fails, or a shape or count differs."""
    if manifest.golden is None:
        raise GoldenError("manifest has no golden spec: devices could not self-test this model")
    inputs, expected = read_golden(folder / manifest.golden.file)
    try:
        actual = [out for tensor in inputs for out in run_batched(run, tensor, manifest)]
    except Exception as exc:  # onnxruntime's own error types
        raise GoldenError(f"inference on golden inputs failed: {exc}") from None
    if len(actual) != len(expected):
        raise GoldenError(f"{len(actual)} outputs for {len(expected)} golden outputs")
    diffs = []
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got.shape != want.shape:
            raise GoldenError(f"golden output_{i}: shape {list(got.shape)} != expected {list(want.shape)}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
        if not np.isfinite(diff):
            raise GoldenError(f"golden output_{i}: not finite")
        diffs.append(diff)
    return diffs


def check_golden(run: Run, manifest: ModelManifest, folder: Path) -> float:
    """The largest difference; GoldenError naming the first output beyond the manifest's atol."""
    diffs = golden_diffs(run, manifest, folder)
    assert manifest.golden is not None
    for i, diff in enumerate(diffs):
        if diff > manifest.golden.atol:
            raise GoldenError(f"golden output_{i} differs by {diff:.4g} > atol {manifest.golden.atol}")
    return max(diffs)


def write_golden(
    run: Run, inputs: Sequence[np.ndarray], folder: Path, atol: float = 0.05, name: str = GOLDEN_FILE
) -> GoldenSpec:
    """Run each input once; store ``input_i`` and the outputs in manifest order as ``output_*``."""
    arrays: dict[str, np.ndarray] = {}
    k = 0
    for i, tensor in enumerate(inputs):
        arrays[f"input_{i}"] = tensor
        for out in run(tensor):
            arrays[f"output_{k}"] = out
            k += 1
    np.savez_compressed(Path(folder) / name, **arrays)
    return GoldenSpec(file=name, atol=atol)
