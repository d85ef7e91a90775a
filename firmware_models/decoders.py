"""Raw model outputs → labelled detections, for every decoder type a manifest can name.

These are the toolchain's reference decoders (evaluation, self-checks); the edge agent has its own,
which must agree with the conventions written here and in each manifest's ``decoder`` block:

- ``classifier``: one output ``[1, N]`` (logits when ``apply_softmax`` else probabilities).
- ``fomo``: ``[1, N, H/s, W/s]`` per-cell class scores (``params.layout`` "NHWC" for ``[1, H/s, W/s, N]``);
  a cell is an object cell when its arg-max class is not ``background_index`` and its score ≥ threshold;
  8-connected object cells of one class are one detection at their score-weighted centre (Edge Impulse);
  ``params.merge_gap`` ``{label: [columns, rows]}`` first closes that label's mask with that radius, so
  blobs at most 2 x columns (2 x rows) empty cells apart are one object (a long truck lit twice), and
  ``params.connectivity`` ``{label: 4}`` groups that label's cells 4-connected (diagonal neighbours
  are two objects: people side by side).
- ``ssd``: ``boxes [1, K, 4]`` normalised corners x1, y1, x2, y2 and ``scores [1, K, N]``; per-class NMS.
- ``yolo``: v5 rows ``[1, K, 5+N]`` (cx, cy, w, h, objectness, classes) or v8 ``[1, 4+N, K]`` (no
  objectness), boxes in input pixels; ``params.version`` 5 or 8 (also "v5"/"v8"), else inferred.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shared.manifest import DecoderType, ModelManifest

from .preprocess import letterbox_params


@dataclass(frozen=True)
class Detection:
    label: int
    score: float
    centroid: tuple[float, float]  # normalised to the original frame
    bbox: tuple[float, float, float, float] | None = None  # normalised x1, y1, x2, y2


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def classify(outputs: list[np.ndarray], manifest: ModelManifest) -> np.ndarray:
    """Class probabilities ``[N]`` of a classifier output."""
    scores = np.asarray(outputs[0], np.float32).reshape(-1)
    return softmax(scores, 0) if manifest.decoder.apply_softmax else scores


def decode(
    outputs: list[np.ndarray],
    manifest: ModelManifest,
    frame_hw: tuple[int, int],
    score_threshold: float | None = None,
) -> list[Detection]:
    thr = manifest.decoder.score_threshold if score_threshold is None else score_threshold
    kind = manifest.decoder.type
    if kind == DecoderType.CLASSIFIER:
        probs = classify(outputs, manifest)
        k = int(np.argmax(probs))
        if k == manifest.decoder.background_index or probs[k] < thr:
            return []
        return [Detection(k, float(probs[k]), (0.5, 0.5), (0.0, 0.0, 1.0, 1.0))]
    if kind == DecoderType.FOMO:
        return _fomo(outputs[0], manifest, thr)
    if kind == DecoderType.SSD:
        boxes, scores = _named(outputs, manifest, ("boxes", "scores"))
        dets = _boxes(
            np.asarray(boxes).reshape(-1, 4),
            np.asarray(scores).reshape(len(boxes.reshape(-1, 4)), -1),
            manifest,
            thr,
        )
        return dets
    if kind == DecoderType.YOLO:
        return _yolo(outputs[0], manifest, frame_hw, thr)
    raise ValueError(f"unknown decoder type {kind!r}")


def _named(outputs: list[np.ndarray], manifest: ModelManifest, names: tuple[str, ...]) -> list[np.ndarray]:
    """Pick outputs by the manifest's output names (``boxes``/``scores`` by name, else by order)."""
    declared = [o.name for o in manifest.outputs]
    picked = []
    for i, want in enumerate(names):
        match = [j for j, n in enumerate(declared) if want in n.lower()]
        picked.append(outputs[match[0]] if match else outputs[i])
    return picked


def _fomo(raw: np.ndarray, manifest: ModelManifest, thr: float) -> list[Detection]:
    """8-connected cells of one class (arg-max, score ≥ thr) are one object at their score-weighted centre."""
    dec = manifest.decoder
    maps = np.asarray(raw, np.float32)[0]
    if dec.params.get("layout", "NCHW") == "NHWC":
        maps = maps.transpose(2, 0, 1)
    if dec.apply_softmax:
        maps = softmax(maps, 0)
    n, gh, gw = maps.shape
    best = maps.argmax(0)
    gaps = dec.params.get("merge_gap", {})
    connectivity = dec.params.get("connectivity", {})
    out: list[Detection] = []
    for c in range(n):
        if c == dec.background_index:
            continue
        mask = ((best == c) & (maps[c] >= thr)).astype(np.uint8)
        if not mask.any():
            continue
        label = manifest.labels[c]
        mask = close_gaps(mask, gaps.get(label))
        count, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=int(connectivity.get(label, 8))
        )
        for k in range(1, count):
            ys, xs = np.nonzero(comp == k)
            weights = maps[c, ys, xs]
            cx = (float((xs * weights).sum() / weights.sum()) + 0.5) / gw
            cy = (float((ys * weights).sum() / weights.sum()) + 0.5) / gh
            x, y, w, h = (int(v) for v in stats[k, :4])
            out.append(
                Detection(c, float(weights.max()), (cx, cy), (x / gw, y / gh, (x + w) / gw, (y + h) / gh))
            )
    return out


def close_gaps(mask: np.ndarray, gap: list[int] | int | None) -> np.ndarray:
    """Morphological closing of radius ``gap`` = (columns, rows); no gap, no change."""
    if not gap:
        return mask
    gx, gy = (gap, gap) if isinstance(gap, int) else gap
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((2 * gy + 1, 2 * gx + 1), np.uint8))


def _boxes(boxes: np.ndarray, scores: np.ndarray, manifest: ModelManifest, thr: float) -> list[Detection]:
    """Per-class NMS over normalised x1, y1, x2, y2 boxes."""
    dec = manifest.decoder
    if dec.apply_softmax:
        scores = softmax(scores, 1)
    out: list[Detection] = []
    for c in range(scores.shape[1]):
        if c == dec.background_index:
            continue
        keep = np.nonzero(scores[:, c] >= thr)[0]
        if not len(keep):
            continue
        b = np.clip(boxes[keep], 0.0, 1.0)
        xywh = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in b]
        picked = cv2.dnn.NMSBoxes(xywh, scores[keep, c].tolist(), thr, dec.iou_threshold)
        for i in np.asarray(picked).reshape(-1):
            x1, y1, x2, y2 = (float(v) for v in b[i])
            out.append(
                Detection(c, float(scores[keep[i], c]), ((x1 + x2) / 2, (y1 + y2) / 2), (x1, y1, x2, y2))
            )
    return out


def yolo_version(manifest: ModelManifest, shape: tuple[int, ...]) -> int:
    """5 or 8 from ``params.version`` (5, 8, "v5", "v8"), else from the shape ``[K, 5+N]`` vs ``[4+N, K]``."""
    declared = manifest.decoder.params.get("version")
    if declared is not None:
        return int(str(declared).lower().lstrip("v"))
    return 5 if shape[-1] == 5 + len(manifest.labels) else 8


def _yolo(raw: np.ndarray, manifest: ModelManifest, frame_hw: tuple[int, int], thr: float) -> list[Detection]:
    arr = np.asarray(raw, np.float32)[0]
    version = yolo_version(manifest, arr.shape)
    if version == 8:
        arr = arr.T  # [K, 4+N]
        scores = arr[:, 4:]
    else:
        scores = arr[:, 5:] * arr[:, 4:5]
    spec = manifest.input
    cx, cy, w, h = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if spec.resize == "letterbox":  # input pixels → original frame, undoing the padding
        scale, left, top = letterbox_params(frame_hw, (spec.height, spec.width))
        x1, x2 = (x1 - left) / scale / frame_hw[1], (x2 - left) / scale / frame_hw[1]
        y1, y2 = (y1 - top) / scale / frame_hw[0], (y2 - top) / scale / frame_hw[0]
    else:
        x1, x2, y1, y2 = x1 / spec.width, x2 / spec.width, y1 / spec.height, y2 / spec.height
    return _boxes(np.stack([x1, y1, x2, y2], 1), scores, manifest, thr)
