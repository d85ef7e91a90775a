"""Frame → model input exactly as the manifest's ``InputSpec`` says; the same code trains, calibrates,
evaluates and serves.

Resize: ``stretch``, or ``letterbox`` (aspect kept) placed ``center`` or ``top-left`` on a canvas of
``pad_value``; ``interpolation`` area (the shared area-average pyramid), linear, nearest or cubic.
Then colour order, ``(pixel * scale - mean) / std``, dtype and NCHW or NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model_runtime.imaging import Pyramid
from shared.manifest import InputSpec

INTERPOLATION = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Letterbox:
    """How a region of the frame was fitted into the model input (to map boxes back)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float


def _resize(image: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    if interpolation == "area":
        return Pyramid.of(image).resized(width, height)
    return cv2.resize(image, (width, height), interpolation=INTERPOLATION[interpolation])


def letterbox_of(shape: tuple[int, ...], spec: InputSpec) -> Letterbox:
    """How an image of ``shape`` (h, w, ...) is fitted into the input (no pixels touched)."""
    h, w = shape[:2]
    tw, th = spec.width, spec.height
    if spec.resize != "letterbox":
        return Letterbox(tw / w, th / h, 0.0, 0.0)
    scale = min(tw / w, th / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    px, py = ((tw - nw) // 2, (th - nh) // 2) if spec.align == "center" else (0, 0)
    return Letterbox(scale, scale, px, py)


def fit(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 image of any size → BGR image of the model's size, and how it was fitted."""
    h, w = image.shape[:2]
    tw, th = spec.width, spec.height
    if spec.resize != "letterbox":
        return _resize(image, tw, th, spec.interpolation), Letterbox(tw / w, th / h, 0.0, 0.0)
    lb = letterbox_of(image.shape, spec)
    nw, nh = max(1, round(w * lb.scale_x)), max(1, round(h * lb.scale_y))
    inner = _resize(image, nw, nh, spec.interpolation)
    px, py = int(lb.pad_x), int(lb.pad_y)
    canvas = np.full((th, tw, image.shape[2] if image.ndim == 3 else 1), spec.pad_value, dtype=np.uint8)
    canvas[py : py + nh, px : px + nw] = inner.reshape(nh, nw, -1)
    return canvas, lb


def to_tensor(images_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """BGR uint8 ``[n, H, W, 3]`` already at the model's size → model input batch (colour, norm, layout)."""
    x = images_bgr
    if spec.color == "RGB":
        x = x[..., ::-1]
    elif spec.color == "GRAY":
        x = np.stack([cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY) for img in x])[..., None]
    if spec.dtype == "float32":
        channels = x.shape[-1]
        mean = np.asarray(spec.mean, dtype=np.float32)[:channels]
        std = np.asarray(spec.std, dtype=np.float32)[:channels]
        # (pixel * scale - mean) / std as one multiply-add: this runs on every inference.
        x = x.astype(np.float32) * (np.float32(spec.scale) / std)
        if mean.any():
            x -= mean / std
    elif spec.dtype == "uint8":
        x = x.astype(np.uint8)
    else:  # int8 inputs take pixels re-centred on zero
        x = (x.astype(np.int16) - 128).astype(np.int8)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def preprocess(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 image → model input tensor (batch 1) and the letterbox used."""
    fitted, box = fit(image, spec)
    if spec.dtype == "float32" and spec.layout == "NCHW" and spec.color != "GRAY" and len(set(spec.std)) == 1:
        # OpenCV's blob builder does colour swap, (x - m) * s and HWC→NCHW in one C++ pass (4x numpy).
        std = spec.std[0]
        mean = tuple(m / spec.scale for m in spec.mean[:3])  # in the model's channel order (OpenCV docs)
        blob = cv2.dnn.blobFromImage(fitted, spec.scale / std, mean=mean, swapRB=spec.color == "RGB")
        return blob, box
    return to_tensor(fitted[None], spec), box


def prepare(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One BGR frame of any size → a ``[1, ...]`` model input (calibration, golden files)."""
    return preprocess(image, spec)[0]
