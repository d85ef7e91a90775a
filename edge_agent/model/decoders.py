"""Decoders turn raw model outputs into labelled detections; registered by the manifest's ``decoder.type``.

Conventions (docs/edge/decoders.md): every decoder returns boxes as x1, y1, x2, y2 in *model input
pixels*; the runtime maps them back through the letterbox to normalised frame coordinates. Outputs are
taken in the order the manifest lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from shared.manifest import DecoderSpec, ModelManifest


@dataclass
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 (input pixels from a decoder; 0..1 after mapping)


class DecoderError(ValueError):
    """Outputs whose shape does not match what the decoder type expects."""


Decoder = Callable[[Sequence[np.ndarray], ModelManifest], list[Detection]]
_DECODERS: dict[str, Decoder] = {}


def register(kind: str) -> Callable[[Decoder], Decoder]:
    def wrap(fn: Decoder) -> Decoder:
        _DECODERS[kind] = fn
        return fn

    return wrap


def get_decoder(kind: str) -> Decoder:
    try:
        return _DECODERS[str(kind)]
    except KeyError:
        raise DecoderError(f"no decoder registered for type {kind!r} (have {sorted(_DECODERS)})") from None


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _threshold(spec: DecoderSpec) -> float:
    return spec.score_threshold


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, spec: DecoderSpec) -> list[int]:
    """Per-class non-maximum suppression (OpenCV's implementation); returns kept indices."""
    keep: list[int] = []
    for cls in np.unique(classes):
        idx = np.flatnonzero(classes == cls)
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes[idx]]
        kept = cv2.dnn.NMSBoxes(
            xywh, scores[idx].astype(float).tolist(), _threshold(spec), spec.iou_threshold
        )
        keep.extend(int(idx[k]) for k in np.asarray(kept).reshape(-1))
    return sorted(keep, key=lambda i: -scores[i])


def _detections(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, labels: Sequence[str], keep: Sequence[int]
) -> list[Detection]:
    return [
        Detection(labels[int(classes[i])], float(scores[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
        for i in keep
    ]


@register("classifier")
def decode_classifier(outputs: Sequence[np.ndarray], manifest: ModelManifest) -> list[Detection]:
    """[1, N] logits or probabilities → one detection covering the whole input (the region classified)."""
    logits = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
    if logits.size != len(manifest.labels):
        raise DecoderError(
            f"classifier output has {logits.size} values, manifest has {len(manifest.labels)} labels"
        )
    probs = softmax(logits) if manifest.decoder.apply_softmax else logits
    best = int(np.argmax(probs))
    if best == manifest.decoder.background_index or probs[best] < manifest.decoder.score_threshold:
        return []
    w, h = manifest.input.width, manifest.input.height
    return [
        Detection(manifest.labels[best], float(np.clip(probs[best], 0, 1)), (0.0, 0.0, float(w), float(h)))
    ]


def close_gaps(mask: np.ndarray, gap: Sequence[int] | int | None) -> np.ndarray:
    """Join blobs of one label across empty cells: a morphological closing of radius ``gap`` (columns,
    rows), so blobs at most 2 x columns apart in a row (2 x rows in a column) become one.

    A long object lit as two blobs (a truck whose middle looks like no centroid) is one object; the
    manifest sets the radius per label, tuned on validation frames (``firmware_models.evaluate``).
    """
    if not gap:
        return mask
    gx, gy = (gap, gap) if isinstance(gap, int) else gap
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((2 * gy + 1, 2 * gx + 1), np.uint8))


@register("fomo")
def decode_fomo(outputs: Sequence[np.ndarray], manifest: ModelManifest) -> list[Detection]:
    """FOMO heat map [1, N, H/s, W/s] (or NHWC with params.layout) of per-cell class probabilities.

    Connected cells of one class above threshold form one object: box = the cells' extent, centre =
    probability-weighted centroid, score = the peak cell. ``params.apply_softmax`` when the map is logits.
    ``params.merge_gap`` ({label: [columns, rows]}) first joins one label's blobs across small gaps;
    ``params.connectivity`` ({label: 4}) keeps diagonal neighbours apart (default 8-connected).
    """
    spec = manifest.decoder
    heat = np.asarray(outputs[0], dtype=np.float32)
    if heat.ndim != 4 or heat.shape[0] != 1:
        raise DecoderError(f"fomo expects a [1, N, H, W] map, got {list(heat.shape)}")
    heat = heat[0]
    if spec.params.get("layout", "NCHW") == "NHWC":
        heat = heat.transpose(2, 0, 1)
    if heat.shape[0] != len(manifest.labels):
        raise DecoderError(
            f"fomo map has {heat.shape[0]} classes, manifest has {len(manifest.labels)} labels"
        )
    if spec.apply_softmax:
        heat = softmax(heat, axis=0)
    rows, cols = heat.shape[1:]
    sx, sy = manifest.input.width / cols, manifest.input.height / rows
    winner = heat.argmax(axis=0)
    # Cells where some object class wins above threshold; usually none (an empty scene), then we are done.
    lit = heat.max(axis=0) >= spec.score_threshold
    if spec.background_index is not None:
        lit &= winner != spec.background_index
    if not lit.any():
        return []
    found: list[Detection] = []
    refine = bool(spec.params.get("refine", True))
    ring = np.ones((3, 3), np.uint8)
    xs, ys = np.arange(cols), np.arange(rows)  # cell indices, sliced per component below
    gaps = spec.params.get("merge_gap", {})
    connectivity = spec.params.get("connectivity", {})
    # The classes present, ascending (bincount is cheaper than np.unique on a few hundred cells).
    for cls in np.flatnonzero(np.bincount(winner[lit], minlength=len(manifest.labels))).tolist():
        label = manifest.labels[cls]
        mask = close_gaps((lit & (winner == cls)).astype(np.uint8), gaps.get(label))
        count, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=int(connectivity.get(label, 8))
        )
        for k in range(1, count):
            x, y, w, h = stats[k, :4].tolist()
            # Work in the component's bounding box (one cell wider for the ring), not the whole grid.
            x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(cols, x + w + 1), min(rows, y + h + 1)
            probs = heat[cls, y0:y1, x0:x1]
            own = comp[y0:y1, x0:x1] == k
            peak = float(probs[own].max())
            cells = own.view(np.uint8)
            if refine:
                # Sub-cell centre: also weigh the ring of neighbour cells by their (sub-threshold)
                # probability — an object straddling two rows lights both, so its centre is not
                # snapped to one cell centre (the grid is 4-8x coarser than the input).
                cells = cv2.dilate(cells, ring)
            weights = probs * cells
            total = float(weights.sum())
            cx = (float((weights.sum(axis=0) * xs[x0:x1]).sum()) / total + 0.5) * sx
            cy = (float((weights.sum(axis=1) * ys[y0:y1]).sum()) / total + 0.5) * sy
            # Centred on the weighted centroid (FOMO's real output), sized by the cells' extent.
            box = (cx - w * sx / 2, cy - h * sy / 2, cx + w * sx / 2, cy + h * sy / 2)
            found.append(Detection(label, peak, box))
    return sorted(found, key=lambda d: -d.score)


@register("ssd")
def decode_ssd(outputs: Sequence[np.ndarray], manifest: ModelManifest) -> list[Detection]:
    """boxes [1, K, 4] normalised x1, y1, x2, y2 + scores [1, K, N] (softmax if apply_softmax), NMS."""
    spec = manifest.decoder
    boxes = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(outputs[1], dtype=np.float32)
    scores = scores.reshape(boxes.shape[0], -1)
    if scores.shape[1] != len(manifest.labels):
        raise DecoderError(f"ssd scores have {scores.shape[1]} classes, manifest has {len(manifest.labels)}")
    if spec.apply_softmax:
        scores = softmax(scores, axis=1)
    if spec.background_index is not None:
        scores = scores.copy()
        scores[:, spec.background_index] = 0.0
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(classes)), classes]
    sel = np.flatnonzero(best >= spec.score_threshold)
    pixel = boxes[sel] * np.array([manifest.input.width, manifest.input.height] * 2, dtype=np.float32)
    keep = nms(pixel, best[sel], classes[sel], spec)
    return _detections(pixel, best[sel], classes[sel], manifest.labels, keep)


@register("yolo")
def decode_yolo(outputs: Sequence[np.ndarray], manifest: ModelManifest) -> list[Detection]:
    """YOLO rows in input pixels: v5 [1, K, 5+N] (cx, cy, w, h, objectness, classes…) or
    v8 [1, 4+N, K] (cx, cy, w, h, classes…); ``params.version`` is 5 or 8 ("v5"/"v8" too; default 8).
    NMS per class."""
    spec = manifest.decoder
    version = int(str(spec.params.get("version", 8)).lower().removeprefix("v") or 0)
    raw = np.asarray(outputs[0], dtype=np.float32)
    n = len(manifest.labels)
    if version == 8:
        if raw.ndim != 3 or raw.shape[1] != 4 + n:
            raise DecoderError(f"yolo v8 expects [1, {4 + n}, K], got {list(raw.shape)}")
        rows = raw[0].T
        xywh, scores = rows[:, :4], rows[:, 4:]
    elif version == 5:
        if raw.ndim != 3 or raw.shape[2] != 5 + n:
            raise DecoderError(f"yolo v5 expects [1, K, {5 + n}], got {list(raw.shape)}")
        rows = raw[0]
        xywh, scores = rows[:, :4], rows[:, 5:] * rows[:, 4:5]
    else:
        raise DecoderError(f"yolo params.version must be 5 or 8, got {version}")
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(classes)), classes]
    sel = np.flatnonzero(best >= spec.score_threshold)
    cx, cy, w, h = (xywh[sel, i] for i in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep = nms(boxes, best[sel], classes[sel], spec)
    return _detections(boxes, best[sel], classes[sel], manifest.labels, keep)
