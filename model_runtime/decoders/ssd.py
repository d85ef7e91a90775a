"""``ssd``: decoded boxes [1, K, 4] (normalised x1, y1, x2, y2; role ``boxes``) and class scores
[1, K, N] (role ``scores``; softmax when ``apply_softmax``), then per-class NMS."""

from __future__ import annotations

import numpy as np

from model_runtime.decoders.common import DecoderError, Outputs, boxes_to_detections, pick, register, softmax
from model_runtime.detection import Detection
from shared.manifest import ModelManifest


@register("ssd")
def decode_ssd(outputs: Outputs, manifest: ModelManifest) -> list[Detection]:
    spec = manifest.decoder
    boxes = np.asarray(pick(outputs, manifest, "boxes", ("box", "loc")), dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(pick(outputs, manifest, "scores", ("score", "conf", "cls")), dtype=np.float32)
    if scores.size % max(len(boxes), 1) or scores.size // max(len(boxes), 1) != len(manifest.labels):
        raise DecoderError(
            f"ssd scores {list(scores.shape)} do not give {len(manifest.labels)} classes "
            f"for {len(boxes)} boxes"
        )
    scores = scores.reshape(len(boxes), -1)
    if spec.apply_softmax:
        scores = softmax(scores, axis=1)
    pixel = boxes * np.array([manifest.input.width, manifest.input.height] * 2, dtype=np.float32)
    return boxes_to_detections(pixel, scores, manifest, spec.background_index)
