"""``classifier``: one output [1, N] (logits when ``apply_softmax`` else probabilities) → one detection
covering the whole input (the region classified)."""

from __future__ import annotations

import numpy as np

from model_runtime.decoders.common import DecoderError, Outputs, pick, register, softmax
from model_runtime.detection import Detection
from shared.manifest import ModelManifest


def class_probabilities(outputs: Outputs, manifest: ModelManifest) -> np.ndarray:
    """Class probabilities ``[N]`` (accuracy in the toolchain, the decoder here)."""
    logits = np.asarray(pick(outputs, manifest, "logits", ("logit", "prob")), dtype=np.float32).reshape(-1)
    if logits.size != len(manifest.labels):
        raise DecoderError(
            f"classifier output has {logits.size} values, manifest has {len(manifest.labels)} labels"
        )
    return softmax(logits) if manifest.decoder.apply_softmax else logits


@register("classifier")
def decode_classifier(outputs: Outputs, manifest: ModelManifest) -> list[Detection]:
    probs = class_probabilities(outputs, manifest)
    best = int(np.argmax(probs))
    if best == manifest.decoder.background_index or probs[best] < manifest.decoder.score_threshold:
        return []
    w, h = manifest.input.width, manifest.input.height
    return [
        Detection(manifest.labels[best], float(np.clip(probs[best], 0, 1)), (0.0, 0.0, float(w), float(h)))
    ]
