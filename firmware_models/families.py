"""What an exported detector's outputs say about its family, and the preprocessing its exporter used.

The graph cannot tell colour order or normalisation; for the families we recognise we know the
exporter's convention (YOLOX: BGR 0–255, letterbox top-left, pad 114; NanoDet: BGR, ImageNet-style
mean/std in BGR order, letterbox centred, pad 0) and say so in the import report as an assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from model_runtime.labels import COCO80, coco_label_map

Shape = tuple[int | str, ...]


@dataclass
class Guess:
    family: str
    decoder: dict[str, Any]
    roles: dict[str, str] = field(default_factory=dict)  # output name → role
    classes: int = 0
    input: dict[str, Any] = field(default_factory=dict)  # preprocessing known for the family
    notes: list[str] = field(default_factory=list)


YOLOX_INPUT = {
    "color": "BGR",
    "scale": 1.0,
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "resize": "letterbox",
    "align": "top-left",
    "pad_value": 114,
    "interpolation": "linear",
}
NANODET_INPUT = {
    "color": "BGR",
    "scale": 1.0,
    "mean": [103.53, 116.28, 123.675],
    "std": [57.375, 57.12, 58.395],
    "resize": "letterbox",
    "align": "center",
    "pad_value": 0,
    "interpolation": "linear",
}


def grid_cells(width: int, height: int, strides: tuple[int, ...] = (8, 16, 32)) -> int:
    return sum((height // s) * (width // s) for s in strides)


def guess(outputs: dict[str, Shape], width: int, height: int) -> Guess | None:
    """The decoder (and family) the output shapes and names point to; None when nothing fits."""
    names = list(outputs)
    strided = {n: re.search(r"(cls|dis)\w*?(\d+)$", n) for n in names}
    if len(names) >= 2 and all(strided.values()):
        roles = {
            n: f"{'scores' if m.group(1) == 'cls' else 'distances'}/{m.group(2)}"
            for n, m in strided.items()
            if m
        }
        strides = sorted({int(m.group(2)) for m in strided.values() if m})
        cls = next(outputs[n] for n in names if roles[n].startswith("scores"))
        dis = next(outputs[n] for n in names if roles[n].startswith("distances"))
        return Guess(
            "nanodet",
            {"type": "gfl", "params": {"strides": strides, "reg_max": int(dis[-1]) // 4 - 1}},
            roles,
            int(cls[-1]),
            NANODET_INPUT,
            ["GFL heads per stride (NanoDet); preprocessing assumed from NanoDet's export convention"],
        )
    if len(names) == 1:
        shape = outputs[names[0]]
        if len(shape) == 3 and isinstance(shape[1], int) and isinstance(shape[2], int):
            k, last = shape[1], shape[2]
            if k == grid_cells(width, height) and last > 5:
                return Guess(
                    "yolox",
                    {"type": "yolo", "params": {"version": "x", "strides": [8, 16, 32]}},
                    {names[0]: "predictions"},
                    last - 5,
                    YOLOX_INPUT,
                    [
                        "raw YOLOX grid over strides 8/16/32; preprocessing assumed from YOLOX's export "
                        "convention"
                    ],
                )
            if last > 5 and last < k:
                return Guess(
                    "yolov5", {"type": "yolo", "params": {"version": 5}}, {names[0]: "predictions"}, last - 5
                )
            if k > 4 and k < last:
                return Guess(
                    "yolov8", {"type": "yolo", "params": {"version": 8}}, {names[0]: "predictions"}, k - 4
                )
        if len(shape) == 4:
            return Guess(
                "fomo", {"type": "fomo", "background_index": 0}, {names[0]: "heatmap"}, int(shape[1])
            )
        if len(shape) == 2:
            return Guess("classifier", {"type": "classifier"}, {names[0]: "logits"}, int(shape[1]))
    if len(names) == 2:
        a, b = names
        if outputs[a][-1] == 4 or outputs[b][-1] == 4:
            boxes, scores = (a, b) if outputs[a][-1] == 4 else (b, a)
            return Guess("ssd", {"type": "ssd"}, {boxes: "boxes", scores: "scores"}, int(outputs[scores][-1]))
    return None


def labels_for(classes: int) -> tuple[tuple[str, ...], dict[str, Any] | None, bool]:
    """Labels, label map, and whether they are known (COCO-80) or placeholders the user must name."""
    if classes == len(COCO80):
        return COCO80, coco_label_map().model_dump(), True
    return tuple(f"class_{i}" for i in range(classes)), None, False
