"""One model runtime for the camera, the hub and the toolchain (torch-free: numpy, OpenCV, onnxruntime).

manifest → preprocess (``preprocess``) → session (``session``) → decode (``decoders``) → ``Detection``.
The edge agent, the hub's model validation and the toolchain's calibration, evaluation and golden files
all import this package, so training and serving cannot drift apart. Names load lazily: the hub uses
``session`` and ``golden`` without pulling in OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DecoderError": "model_runtime.decoders",
    "decode": "model_runtime.decoders",
    "get_decoder": "model_runtime.decoders",
    "Detection": "model_runtime.detection",
    "Letterbox": "model_runtime.preprocessing",
    "fit": "model_runtime.preprocessing",
    "prepare": "model_runtime.preprocessing",
    "preprocess": "model_runtime.preprocessing",
    "to_tensor": "model_runtime.preprocessing",
    "ModelLoadError": "model_runtime.runtime",
    "ModelRuntime": "model_runtime.runtime",
    "SessionSettings": "model_runtime.session",
    "open_session": "model_runtime.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'model_runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
