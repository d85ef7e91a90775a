"""Self-test of an installed model: load it exactly as the agent will, replay its golden inputs.

A model that loads but computes something else (wrong weights, wrong export, truncated graph) fails
here, before any camera frame goes through it.
"""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import RuntimeConfig
from model_runtime import ModelLoadError, ModelRuntime
from model_runtime.golden import GoldenError, check_golden


class SelfTestError(RuntimeError):
    pass


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
    try:
        check_golden(runtime.infer, runtime.manifest, Path(model_dir))
    except GoldenError as exc:
        raise SelfTestError(f"self-test: {exc}") from None
    return runtime

