"""``python -m firmware_models detect``: what the model runtime (the agent's) sees in a video, frame by
frame, as JSON lines ``{"frame": n, "detections": [{"label", "score", "cx", "cy", "box"}]}``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from model_runtime import Detection, ModelRuntime
from shared.manifest import DecoderType

from .calibration import IMAGE_SUFFIXES, CalibrationError


def frames(source: str | Path) -> Iterator[np.ndarray]:
    """Every frame of a video file, or every image of a folder (sorted), as BGR arrays."""
    path = Path(source)
    if path.is_dir():
        for file in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is not None:
                yield image
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationError(f"{source}: cannot open video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def as_json(det: Detection, has_box: bool) -> dict:
    cx, cy = det.centroid
    return {
        "label": det.label,
        "score": round(det.score, 4),
        "cx": round(cx, 5),
        "cy": round(cy, 5),
        "box": [round(v, 5) for v in det.box] if has_box else None,
    }


def detect_lines(model_dir: Path, source: str | Path, max_frames: int | None = None) -> Iterator[str]:
    runtime = ModelRuntime(model_dir)
    # FOMO finds centres; its box is only the extent of lit cells, not an object box.
    has_box = runtime.manifest.decoder.type != DecoderType.FOMO
    for n, frame in enumerate(frames(source)):
        if max_frames is not None and n >= max_frames:
            return
        found = runtime.detect(frame)
        yield json.dumps({"frame": n, "detections": [as_json(d, has_box) for d in found]})
