"""Calibration and evaluation frames: rendered by the world, read from a folder of images, or from a video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synthetic_world import crop_samples, still_samples

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif", ".m4v"}
RENDERED = "rendered"


class CalibrationError(ValueError):
    """The calibration source is missing, unreadable or empty."""


def frames_from_folder(folder: Path, count: int) -> list[np.ndarray]:
    """Images of the folder, or (none there) frames of its videos, spread evenly over them."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise CalibrationError(
                f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or videos "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})"
            )
        frames: list[np.ndarray] = []
        for i, video in enumerate(videos):
            share = count // len(videos) + (1 if i < count % len(videos) else 0)
            if share:
                frames += frames_from_video(video, share)
        return frames
    picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(count, len(files)))]
    frames = []
    for path in picks:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CalibrationError(f"{path}: not a readable image")
        frames.append(image)
    return frames


def frames_from_video(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationError(f"{path}: cannot open video")
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
        wanted = {int(i) for i in np.linspace(0, max(total - 1, 0), min(count, max(total, 1)))}
        frames, index = [], 0
        while len(frames) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    if not frames:
        raise CalibrationError(f"{path}: no frames could be decoded")
    return frames


def load_frames(
    source: str | Path,
    count: int,
    seed: int = 0,
    crops: bool = False,
    crop_labels: tuple[str, ...] = ("background", "person", "car", "bicycle"),
) -> list[np.ndarray]:
    """BGR frames from ``source``: "rendered" (the world; object crops with ``crops``), a folder, a video."""
    if str(source) == RENDERED:
        if crops:
            per_class = max(1, -(-count // len(crop_labels)))
            x, _ = crop_samples(seed, per_class, labels=crop_labels)
            return list(x[:count])
        return [image for image, _ in still_samples(seed, count)]
    path = Path(source)
    if path.is_dir():
        return frames_from_folder(path, count)
    if path.is_file():
        return frames_from_video(path, count)
    raise CalibrationError(f"{source}: not 'rendered', an image folder or a video file")
