"""What every decoder shares: the registry, output binding by role or name, softmax and NMS."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np

from model_runtime.detection import Detection
from shared.manifest import DecoderSpec, ModelManifest

Outputs = Mapping[str, np.ndarray]  # manifest output name → array
Decoder = Callable[[Outputs, ModelManifest], list[Detection]]
_DECODERS: dict[str, Decoder] = {}


class DecoderError(ValueError):
    """Outputs whose shape or binding does not match what the decoder type expects."""


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


def pick(outputs: Outputs, manifest: ModelManifest, role: str, hints: Sequence[str] = ()) -> np.ndarray:
    """The output bound to ``role``: the one whose manifest ``role`` is it, else whose name is it or
    contains a hint; a single-output model's only output. Never by position."""
    specs = manifest.outputs
    for spec in specs:
        if spec.role == role:
            return outputs[spec.name]
    for spec in specs:
        if spec.name == role or any(h in spec.name.lower() for h in hints):
            return outputs[spec.name]
    if len(specs) == 1:
        return outputs[specs[0].name]
    names = [s.name for s in specs]
    raise DecoderError(
        f"{manifest.decoder.type.value} decoder needs an output with role {role!r}; "
        f'give one of {names} "role": "{role}" in the manifest'
    )


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, spec: DecoderSpec) -> list[int]:
    """Per-class non-maximum suppression (OpenCV's implementation); returns kept indices, best first."""
    keep: list[int] = []
    for cls in np.unique(classes):
        idx = np.flatnonzero(classes == cls)
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes[idx]]
        kept = cv2.dnn.NMSBoxes(
            xywh, scores[idx].astype(float).tolist(), spec.score_threshold, spec.iou_threshold
        )
        keep.extend(int(idx[k]) for k in np.asarray(kept).reshape(-1))
    return sorted(keep, key=lambda i: -scores[i])


def boxes_to_detections(
    boxes: np.ndarray, scores: np.ndarray, manifest: ModelManifest, background: int | None = None
) -> list[Detection]:
    """Per-row class scores [K, N] and corner boxes [K, 4] (input pixels) → best class per row,
    threshold, per-class NMS."""
    if background is not None:
        scores = scores.copy()
        scores[:, background] = 0.0
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(classes)), classes]
    sel = np.flatnonzero(best >= manifest.decoder.score_threshold)
    boxes, best, classes = boxes[sel], best[sel], classes[sel]
    keep = nms(boxes, best, classes, manifest.decoder)
    labels = manifest.labels
    return [
        Detection(labels[int(classes[i])], float(best[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
        for i in keep
    ]
