"""``gfl`` (NanoDet-style generalised focal loss heads): per stride ``s`` in ``params.strides``, class
scores [1, HW, N] (role ``scores/s``, already in 0–1) and distance distributions [1, HW, 4·(reg_max+1)]
(role ``distances/s``): softmax over the bins of each side, the expectation times ``s`` is the
distance from the cell centre ``x·s + (s−1)/2`` to the left, top, right and bottom edges."""

from __future__ import annotations

import re

import numpy as np

from model_runtime.decoders.common import DecoderError, Outputs, boxes_to_detections, register, softmax
from model_runtime.detection import Detection
from shared.manifest import ModelManifest


def _bound(outputs: Outputs, manifest: ModelManifest, kind: str, stride: int) -> np.ndarray:
    role = f"{kind}/{stride}"
    hint = "cls" if kind == "scores" else "dis"
    for spec in manifest.outputs:
        if spec.role == role:
            return outputs[spec.name]
    for spec in manifest.outputs:
        if spec.role is None and hint in spec.name.lower() and re.search(rf"(?<!\d){stride}$", spec.name):
            return outputs[spec.name]
    raise DecoderError(
        f"gfl decoder needs an output with role {role!r} (have {[s.name for s in manifest.outputs]})"
    )


@register("gfl")
def decode_gfl(outputs: Outputs, manifest: ModelManifest) -> list[Detection]:
    params = manifest.decoder.params
    strides = [int(s) for s in params.get("strides", (8, 16, 32))]
    bins = int(params.get("reg_max", 7)) + 1
    w, h = manifest.input.width, manifest.input.height
    all_boxes, all_scores = [], []
    for s in strides:
        scores = np.asarray(_bound(outputs, manifest, "scores", s), np.float32).reshape(
            -1, len(manifest.labels)
        )
        dist = np.asarray(_bound(outputs, manifest, "distances", s), np.float32)
        cols, rows = -(-w // s), -(-h // s)
        if len(scores) != cols * rows or dist.size != cols * rows * 4 * bins:
            raise DecoderError(
                f"gfl stride {s}: {len(scores)} score rows and {dist.size} distance values for a "
                f"{cols}x{rows} grid with {bins} bins per side"
            )
        keep = np.flatnonzero(scores.max(axis=1) >= manifest.decoder.score_threshold)
        if not len(keep):
            continue
        d = softmax(dist.reshape(-1, 4, bins)[keep], axis=2) @ np.arange(bins, dtype=np.float32) * s
        cx = (keep % cols) * s + (s - 1) / 2
        cy = (keep // cols) * s + (s - 1) / 2
        all_boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
        all_scores.append(scores[keep])
    if not all_boxes:
        return []
    return boxes_to_detections(np.concatenate(all_boxes), np.concatenate(all_scores), manifest)
