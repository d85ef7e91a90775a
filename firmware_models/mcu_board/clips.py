"""Frames of a real clip as the board's camera would hand them over: model-sized CHW pixels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from model_runtime.preprocessing import fit
from shared.manifest import InputSpec

from .build import REPO

DEFAULT_CLIP = "person-bicycle-car-detection.gif"  # a parking lot from above: car, cyclist, pedestrian


def video_dir() -> Path:
    """The shared real clips: $EDGESIGHT_VIDEO_DIR, else ../shared/data/video beside the repository."""
    candidates = [
        os.environ.get("EDGESIGHT_VIDEO_DIR"),
        REPO.parent / "shared" / "data" / "video",
        "/work/shared/data/video",
    ]
    for c in candidates:
        if c and (Path(c) / DEFAULT_CLIP).exists():
            return Path(c)
    raise FileNotFoundError(f"no real clips found (looked in {[str(c) for c in candidates if c]})")


def to_pixels(frame_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A BGR frame → ``[C, H, W]`` uint8 at the model's size and colour order (the float input is
    exactly these pixels times ``spec.scale``)."""
    if spec.color != "RGB" or spec.layout != "NCHW":
        raise ValueError("the board takes RGB NCHW models")
    small = fit(frame_bgr, spec)[0][..., ::-1]
    return np.ascontiguousarray(small.transpose(2, 0, 1))


def clip_frames(path: Path, spec: InputSpec, count: int | None = None, step: int = 1) -> Iterator[np.ndarray]:
    """Every ``step``-th frame of ``path`` as board pixels, at most ``count``."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {path}")
    index = taken = 0
    try:
        while count is None or taken < count:
            ok, frame = cap.read()
            if not ok:
                return
            if index % step == 0:
                taken += 1
                yield to_pixels(frame, spec)
            index += 1
    finally:
        cap.release()
