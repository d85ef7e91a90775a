"""``yolo``, by ``params.version``:

- ``5``: rows [1, K, 5+N] (cx, cy, w, h, objectness, classes) in input pixels;
- ``8``: [1, 4+N, K] (cx, cy, w, h, classes), no objectness;
- ``x``: YOLOX raw grid [1, K, 5+N] over ``params.strides`` (default 8, 16, 32): x, y offsets from the
  cell, log w, h in strides, objectness and class scores (already through a sigmoid in the export).
Then per-class NMS.
"""

from __future__ import annotations

import numpy as np

from model_runtime.decoders.common import DecoderError, Outputs, boxes_to_detections, pick, register
from model_runtime.detection import Detection
from shared.manifest import ModelManifest


def yolo_version(manifest: ModelManifest, shape: tuple[int, ...]) -> str:
    """ "5", "8" or "x" from ``params.version`` (5, 8, "v5", "v8", "x"), else from the shape."""
    declared = manifest.decoder.params.get("version")
    if declared is not None:
        return str(declared).lower().removeprefix("v").removeprefix("olo")
    return "5" if shape[-1] == 5 + len(manifest.labels) else "8"


def grid_centres(width: int, height: int, strides: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell (x, y) indices and each cell's stride, stride by stride, rows then columns (YOLOX's order)."""
    cells, steps = [], []
    for s in strides:
        ys, xs = np.mgrid[0 : height // s, 0 : width // s]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full(xs.size, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


@register("yolo")
def decode_yolo(outputs: Outputs, manifest: ModelManifest) -> list[Detection]:
    raw = np.asarray(pick(outputs, manifest, "predictions", ("output", "pred")), dtype=np.float32)
    n = len(manifest.labels)
    version = yolo_version(manifest, raw.shape)
    if version == "8":
        if raw.ndim != 3 or raw.shape[1] != 4 + n:
            raise DecoderError(f"yolo v8 expects [1, {4 + n}, K], got {list(raw.shape)}")
        rows = raw[0].T
        xywh, scores = rows[:, :4], rows[:, 4:]
    elif version in ("5", "x"):
        if raw.ndim != 3 or raw.shape[2] != 5 + n:
            raise DecoderError(f"yolo {version} expects [1, K, {5 + n}], got {list(raw.shape)}")
        rows = raw[0]
        xywh, scores = rows[:, :4], rows[:, 5:] * rows[:, 4:5]
        if version == "x":
            strides = [int(s) for s in manifest.decoder.params.get("strides", (8, 16, 32))]
            cells, steps = grid_centres(manifest.input.width, manifest.input.height, strides)
            if len(cells) != len(rows):
                raise DecoderError(
                    f"yolox grid over strides {strides} has {len(cells)} cells, the output {len(rows)} rows"
                )
            xy = (xywh[:, :2] + cells) * steps[:, None]
            wh = np.exp(np.minimum(xywh[:, 2:], 20.0)) * steps[:, None]
            xywh = np.concatenate([xy, wh], axis=1)
    else:
        raise DecoderError(f"yolo params.version must be 5, 8 or x, got {version!r}")
    cx, cy, w, h = (xywh[:, i] for i in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes_to_detections(boxes, scores, manifest)
