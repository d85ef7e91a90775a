"""Frame → model input as a manifest's ``InputSpec`` says (the same code trains, calibrates, evaluates).

numpy + OpenCV only, so bring-your-own-model quantization does not need torch.
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.manifest import InputSpec


def letterbox_params(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> tuple[float, int, int]:
    """Scale and (left, top) padding that fit ``src`` into ``dst`` keeping the aspect ratio."""
    scale = min(dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1])
    new_h, new_w = round(src_hw[0] * scale), round(src_hw[1] * scale)
    return scale, (dst_hw[1] - new_w) // 2, (dst_hw[0] - new_h) // 2


def resize(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    h, w = spec.height, spec.width
    if spec.resize == "stretch":
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    scale, left, top = letterbox_params(image.shape[:2], (h, w))
    inner = cv2.resize(
        image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    out = np.full((h, w, 3), 114, np.uint8)
    out[top : top + inner.shape[0], left : left + inner.shape[1]] = inner
    return out


def to_tensor(images_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """BGR uint8 ``[n, H, W, 3]`` already at the model's size → model input batch (layout, dtype, norm)."""
    x = images_bgr
    if spec.color == "RGB":
        x = x[..., ::-1]
    elif spec.color == "GRAY":
        x = (x.astype(np.float32) @ np.asarray([0.114, 0.587, 0.299], np.float32))[..., None]
    if spec.dtype == "float32":
        x = x.astype(np.float32) * np.float32(spec.scale)
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    elif spec.dtype == "uint8":
        x = x.astype(np.uint8)
    else:
        x = (x.astype(np.int16) - 128).astype(np.int8)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def prepare(image_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One BGR frame of any size → a ``[1, ...]`` model input."""
    return to_tensor(resize(image_bgr, spec)[None], spec)
