"""Raw model outputs → detections, one decoder per family, registered by the manifest's
``decoder.type``; ``decode`` maps their input-pixel boxes back to the frame and renames labels."""

from __future__ import annotations

from collections.abc import Sequence

from model_runtime.decoders import classifier, fomo, gfl, ssd, yolo  # noqa: F401  (registration)
from model_runtime.decoders.classifier import class_probabilities
from model_runtime.decoders.common import DecoderError, Outputs, get_decoder, softmax
from model_runtime.detection import Detection
from model_runtime.preprocessing import Letterbox
from shared.manifest import ModelManifest

__all__ = ["DecoderError", "Outputs", "class_probabilities", "decode", "get_decoder", "named", "softmax"]


def named(arrays: Sequence, manifest: ModelManifest) -> dict:
    """Arrays in the manifest's output order → {output name: array}."""
    return {spec.name: a for spec, a in zip(manifest.outputs, arrays, strict=True)}


def decode(
    outputs: Outputs, manifest: ModelManifest, lb: Letterbox, shape: tuple[int, int]
) -> list[Detection]:
    """The manifest's decoder, then the letterbox undone to boxes normalised to the ``shape`` (h, w)
    image that ``lb`` fitted into the input, then labels renamed by ``label_map`` (dropped where it
    says so)."""
    rh, rw = shape
    rename = manifest.label_map.names if manifest.label_map else {}
    drop = manifest.label_map.drop_unmapped if manifest.label_map else False

    def fit(v: float, pad: float, scale: float, size: int) -> float:
        # Scalar min/max, not np.clip: four calls per detection, and np.clip on a scalar costs ~9 µs.
        return min(max((float(v) - pad) / scale, 0.0), float(size)) / size

    found = []
    for det in get_decoder(manifest.decoder.type)(outputs, manifest):
        label = rename.get(det.label, None if drop else det.label)
        if not label:
            continue
        found.append(
            Detection(
                label,
                det.score,
                (
                    fit(det.box[0], lb.pad_x, lb.scale_x, rw),
                    fit(det.box[1], lb.pad_y, lb.scale_y, rh),
                    fit(det.box[2], lb.pad_x, lb.scale_x, rw),
                    fit(det.box[3], lb.pad_y, lb.scale_y, rh),
                ),
            )
        )
    return found
