"""The two real COCO teachers (YOLOX-nano, NanoDet-m; ../shared/models/teachers, Apache-2.0) and the
real clips (../shared/data/video), found where CI and this machine keep them, imported through the same
``import`` every user runs."""

from __future__ import annotations

import os
from pathlib import Path

from .importer import ImportReport, import_model

REPO = Path(__file__).resolve().parents[1]
TEACHERS = {"yolox-nano": "yolox_nano_416.onnx", "nanodet-m": "nanodet_m_320.onnx"}
PERSON_CLIP = "one-by-one-person-detection.mp4"


def _shared(sub: str, env: str, probe: str) -> Path:
    candidates = [os.environ.get(env), REPO.parent / "shared" / sub, Path("/work/shared") / sub]
    for c in candidates:
        if c and (Path(c) / probe).exists():
            return Path(c)
    raise FileNotFoundError(f"{probe} not found in {[str(c) for c in candidates if c]} (set {env})")


def teachers_dir() -> Path:
    return _shared("models/teachers", "EDGESIGHT_TEACHERS_DIR", TEACHERS["yolox-nano"])


def video_dir() -> Path:
    return _shared("data/video", "EDGESIGHT_VIDEO_DIR", PERSON_CLIP)


def import_teacher(name: str, out: Path) -> ImportReport:
    """``python -m firmware_models import`` on a teacher: the fixed fp32 model and its manifest in ``out``."""
    return import_model(teachers_dir() / TEACHERS[name], out, name=name)
