"""Training and evaluation samples drawn from many short rendered videos (stills and object crops)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from .types import TruthObject
from .video import SyntheticVideo

CROP_LABELS: tuple[str, ...] = ("background", "person", "car", "bicycle")


def still_samples(
    seed: int, count: int, width: int = 320, height: int = 192, frames_per_video: int = 3
) -> Iterator[tuple[np.ndarray, list[TruthObject]]]:
    """``count`` BGR frames with their objects, from varied scenes (street mostly, some indoor)."""
    rng = np.random.default_rng([seed, 1])
    made = 0
    video_seed = 0
    while made < count:
        scene = "indoor" if rng.random() < 0.2 else "street"
        video = SyntheticVideo(
            seed=int(seed * 100_003 + video_seed),
            width=width,
            height=height,
            fps=10.0,
            duration_s=30.0,
            scene=scene,
            density=float(rng.uniform(1.0, 2.0)),
        )
        video_seed += 1
        for index in rng.choice(len(video), size=frames_per_video, replace=False):
            frame = video.frame(int(index))
            yield frame.image, frame.objects
            made += 1
            if made >= count:
                return


def square_crop(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """A ``side``-pixel square centred at (cx, cy), shifted to stay inside the frame, resized to ``size``."""
    h, w = image.shape[:2]
    side = int(max(8, min(side, w, h)))
    x1 = int(np.clip(cx - side / 2, 0, w - side))
    y1 = int(np.clip(cy - side / 2, 0, h - side))
    return cv2.resize(image[y1 : y1 + side, x1 : x1 + side], (size, size), interpolation=cv2.INTER_AREA)


def crop_samples(
    seed: int, per_class: int, size: int = 64, labels: tuple[str, ...] = CROP_LABELS
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced BGR crops ``[n, size, size, 3]`` and label indices: objects ≥ 60 % visible, and background."""
    rng = np.random.default_rng([seed, 2])
    crops: dict[int, list[np.ndarray]] = {i: [] for i in range(len(labels))}
    for image, objects in still_samples(seed, 10**9):
        h, w = image.shape[:2]
        for obj in objects:
            if obj.label not in labels or obj.visible < 0.6:
                continue
            k = labels.index(obj.label)
            if len(crops[k]) >= per_class:
                continue
            bw, bh = (obj.bbox[2] - obj.bbox[0]) * w, (obj.bbox[3] - obj.bbox[1]) * h
            side = max(bw, bh) * rng.uniform(1.05, 1.35)
            jx, jy = rng.uniform(-0.08, 0.08, 2) * side
            crops[k].append(
                square_crop(image, obj.centroid[0] * w + jx, obj.centroid[1] * h + jy, side, size)
            )
        if "background" in labels:
            k = labels.index("background")
            for _ in range(3):
                if len(crops[k]) >= per_class:
                    break
                side = rng.uniform(0.1, 0.6) * h
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                if _empty(objects, cx / w, cy / h, side / w, side / h):
                    crops[k].append(square_crop(image, cx, cy, side, size))
        if all(len(v) >= per_class for v in crops.values()):
            break
    x = np.stack([c for k in sorted(crops) for c in crops[k]])
    y = np.concatenate([np.full(len(crops[k]), k, np.int64) for k in sorted(crops)])
    order = rng.permutation(len(y))
    return x[order], y[order]


def _empty(objects: list[TruthObject], cx: float, cy: float, sw: float, sh: float) -> bool:
    """True when no object's centre lies in the window and no object covers much of it."""
    x1, y1, x2, y2 = cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2
    for obj in objects:
        ox1, oy1, ox2, oy2 = obj.bbox
        inter = max(0.0, min(x2, ox2) - max(x1, ox1)) * max(0.0, min(y2, oy2) - max(y1, oy1))
        if inter > 0.15 * sw * sh or (x1 <= obj.centroid[0] <= x2 and y1 <= obj.centroid[1] <= y2):
            return False
    return True
