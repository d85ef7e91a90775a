"""Self-test of an installed model: load it exactly as the agent will, replay its golden inputs.

A model that loads but computes something else (wrong weights, wrong export, truncated graph) fails
here, before any camera frame goes through it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.config import RuntimeConfig
from edge_agent.model.runtime import ModelLoadError, ModelRuntime


class SelfTestError(RuntimeError):
    pass


def _run(runtime: ModelRuntime, tensor: np.ndarray) -> list[np.ndarray]:
    """Run one golden input; inputs batched beyond the model's fixed batch of 1 go row by row."""
    if tensor.shape[0] > 1 and runtime.manifest.input.shape[0] == 1:
        rows = [runtime.infer(tensor[i : i + 1]) for i in range(tensor.shape[0])]
        return [np.concatenate([r[k] for r in rows], axis=0) for k in range(len(rows[0]))]
    return runtime.infer(tensor)


def self_test(model_dir: Path, runtime_config: RuntimeConfig | None = None) -> ModelRuntime:
    """Return the loaded runtime when a frame goes through the manifest's preprocessing and decoder and
    every golden output matches within the manifest's atol."""
    config = (runtime_config or RuntimeConfig()).model_copy(update={"warmup_runs": 1})
    try:
        runtime = ModelRuntime(model_dir, config)  # the warm-up is one blank frame through the real path
    except ModelLoadError as exc:
        raise SelfTestError(f"self-test: {exc}") from None
    except Exception as exc:  # onnxruntime or decoder errors on a real frame
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SelfTestError(
            f"self-test: a frame through the manifest's preprocessing fails: {reason}"
        ) from None
    golden = runtime.manifest.golden
    if golden is None:
        raise SelfTestError("self-test: manifest has no golden inputs")
    try:
        with np.load(Path(model_dir) / golden.file) as npz:
            inputs = [npz[k] for k in sorted((k for k in npz.files if k.startswith("input_")), key=_index)]
            expected = [npz[k] for k in sorted((k for k in npz.files if k.startswith("output_")), key=_index)]
    except (OSError, ValueError) as exc:
        raise SelfTestError(f"self-test: cannot read golden file {golden.file}: {exc}") from None
    if not inputs or not expected:
        raise SelfTestError(f"self-test: {golden.file} has no input_N / output_N arrays")
    try:
        actual = [out for tensor in inputs for out in _run(runtime, tensor)]
    except Exception as exc:  # onnxruntime's own error types
        raise SelfTestError(f"self-test: inference failed: {exc}") from None
    if len(actual) != len(expected):
        raise SelfTestError(f"self-test: {len(actual)} outputs for {len(expected)} golden outputs")
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got.shape != want.shape:
            raise SelfTestError(f"self-test: output_{i} shape {list(got.shape)} != golden {list(want.shape)}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
        if not np.isfinite(diff) or diff > golden.atol:
            raise SelfTestError(
                f"self-test: output_{i} differs from golden by {diff:.4g} > atol {golden.atol}"
            )
    return runtime


def _index(key: str) -> int:
    return int(key.rsplit("_", 1)[1])
