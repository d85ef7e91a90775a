"""The rendered world: seeded street and indoor camera scenes with ground truth (numpy + OpenCV only).

The edge agent's ``synthetic:`` source imports this package, so it must never import torch or onnx.
"""

from .events import segments_cross, side
from .samples import crop_samples, still_samples
from .types import LABELS, Frame, TruthEvent, TruthObject
from .video import SCENES, SyntheticVideo, write_video

__all__ = [
    "LABELS",
    "SCENES",
    "Frame",
    "SyntheticVideo",
    "TruthEvent",
    "TruthObject",
    "crop_samples",
    "segments_cross",
    "side",
    "still_samples",
    "write_video",
]
