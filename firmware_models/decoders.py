"""Raw model outputs → labelled detections, for every decoder type a manifest can name.

These are the toolchain's reference decoders (evaluation, self-checks); the edge agent has its own,
which must agree with the conventions written here and in each manifest's ``decoder`` block:

- ``classifier``: one output ``[1, N]`` (logits when ``apply_softmax`` else probabilities).
- ``fomo``: ``[1, N, H/s, W/s]`` per-cell class scores (``params.layout`` "NHWC" for ``[1, H/s, W/s, N]``);
  a cell is an object cell when its arg-max class is not ``background_index`` and its score ≥ threshold;
  each 3x3 local maximum of a class's score among its object cells is one detection at the cell centre.
- ``ssd``: ``boxes [1, K, 4]`` normalised corners x1, y1, x2, y2 and ``scores [1, K, N]``; per-class NMS.
- ``yolo``: v5 rows ``[1, K, 5+N]`` (cx, cy, w, h, objectness, classes) or v8 ``[1, 4+N, K]`` (no
  objectness), boxes in input pixels; ``params.version`` "v5"/"v8" or inferred from the shape.
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


def decode(outputs: list[np.ndarray], manifest: ModelManifest, frame_hw: tuple[int, int],
           score_threshold: float | None = None) -> list[Detection]:
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
        dets = _boxes(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(len(boxes.reshape(-1, 4)), -1),
                      manifest, thr)
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
    dec = manifest.decoder
    maps = np.asarray(raw, np.float32)[0]
    if dec.params.get("layout", "NCHW") == "NHWC":
        maps = maps.transpose(2, 0, 1)
    if dec.apply_softmax:
        maps = softmax(maps, 0)
    n, gh, gw = maps.shape
    bg = dec.background_index
    best = maps.argmax(0)
    out: list[Detection] = []
    for c in range(n):
        if c == bg:
            continue
        score = np.where((best == c) & (maps[c] >= thr), maps[c], 0.0).astype(np.float32)
        if not score.any():
            continue
        peaks = (score > 0) & (score >= cv2.dilate(score, np.ones((3, 3), np.uint8)))
        for y, x in zip(*np.nonzero(peaks), strict=True):
            cx, cy = (x + 0.5) / gw, (y + 0.5) / gh
            out.append(Detection(c, float(score[y, x]), (cx, cy), (x / gw, y / gh, (x + 1) / gw, (y + 1) / gh)))
    return out


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
            out.append(Detection(c, float(scores[keep[i], c]), ((x1 + x2) / 2, (y1 + y2) / 2), (x1, y1, x2, y2)))
    return out


def _yolo(raw: np.ndarray, manifest: ModelManifest, frame_hw: tuple[int, int], thr: float) -> list[Detection]:
    n = len(manifest.labels)
    arr = np.asarray(raw, np.float32)[0]
    version = manifest.decoder.params.get("version")
    if version is None:
        version = "v5" if arr.shape[-1] == 5 + n else "v8"
    if version == "v8":
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
