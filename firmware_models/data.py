"""Datasets rendered from the world, as plain numpy arrays (BGR uint8 images at the model's input size)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from model_runtime.preprocessing import fit
from shared.manifest import InputSpec
from synthetic_world import TruthObject, crop_samples, still_samples

IGNORE = -1  # target value for cells the loss and the metric skip (heavily occluded objects)
MIN_VISIBLE = 0.5  # objects less visible than this are "don't care": neither a miss nor a false alarm
# Training marks an object's cell from this visibility on: a car half out of the frame or a person half
# behind a truck is still an object the tracker should keep (the event truth counts it from 0.3).
TARGET_MIN_VISIBLE = 0.3


def fomo_targets(
    objects: Iterable[TruthObject], labels: tuple[str, ...], grid_hw: tuple[int, int]
) -> np.ndarray:
    """Per-cell class index map: the cell holding each object's centroid gets its class (0 = background)."""
    gh, gw = grid_hw
    target = np.zeros((gh, gw), np.int64)
    for obj in objects:  # painter's order: nearer objects come later and win a shared cell
        if obj.label not in labels:
            continue
        cx = min(gw - 1, int(obj.centroid[0] * gw))
        cy = min(gh - 1, int(obj.centroid[1] * gh))
        target[cy, cx] = labels.index(obj.label) if obj.visible >= TARGET_MIN_VISIBLE else IGNORE
    return target


def fomo_dataset(
    seed: int,
    count: int,
    spec: InputSpec,
    labels: tuple[str, ...],
    stride: int = 8,
    desc: str = "render frames",
) -> tuple[np.ndarray, np.ndarray, list[list[TruthObject]]]:
    """Frames resized to the input spec, per-cell targets, and the raw truth for evaluation."""
    grid = (spec.height // stride, spec.width // stride)
    images = np.empty((count, spec.height, spec.width, 3), np.uint8)
    targets = np.empty((count, *grid), np.int64)
    truths: list[list[TruthObject]] = []
    samples = still_samples(seed, count)
    for i, (image, objects) in enumerate(tqdm(samples, total=count, desc=desc, unit="frame", leave=False)):
        images[i] = fit(image, spec)[0]
        targets[i] = fomo_targets(objects, labels, grid)
        truths.append(objects)
    return images, targets, truths


def classifier_dataset(
    seed: int, per_class: int, size: int, labels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    return crop_samples(seed, per_class, size=size, labels=labels)
