"""Distillation end to end in a few steps (proves every stage runs, not that the model is good), and
``detect`` with the committed fomo-real on every real clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from firmware_models.detect import frames
from firmware_models.distil import FOMO_REAL
from firmware_models.label import label
from firmware_models.student_build import build_student
from firmware_models.student_card import write_student_card
from firmware_models.teachers import TEACHERS, teachers_dir, video_dir
from model_runtime import ModelRuntime

REPO = Path(__file__).resolve().parents[2]
FOMO_REAL_DIR = REPO / "firmware_models" / "experimental" / "fomo-real"
CLIPS = sorted(p.name for p in video_dir().iterdir() if p.suffix in (".gif", ".mp4"))


def test_smoke_distillation_builds_a_loadable_int8_student(tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    for i, frame in enumerate(frames(video_dir() / "store-aisle-detection.gif")):
        if i % 8 == 0:
            cv2.imwrite(str(src / f"{i:03d}.png"), frame)
    label(teachers_dir() / TEACHERS["yolox-nano"], [src], tmp_path / "ds", progress=False)
    out = tmp_path / "model"
    report = build_student(
        FOMO_REAL.smoke(), tmp_path / "ds", out, cache=None, progress=False, latency_runs=5
    )
    assert report["train_frames"] >= 8 and report["bytes"]["int8"] <= 256 * 1024
    rt = ModelRuntime(out)  # manifest verified against the file (sha256), golden block present
    assert rt.manifest.precision == "int8" and rt.manifest.golden is not None
    assert rt.manifest.labels == FOMO_REAL.labels and rt.manifest.input.width == 256
    card = write_student_card(out, tmp_path / "card.md").read_text()
    assert "Held-out figures" in card and "Not measured yet" in card


@pytest.mark.skipif(not (FOMO_REAL_DIR / "manifest.json").exists(), reason="fomo-real not built")
@pytest.mark.parametrize("clip", CLIPS)
def test_detect_with_fomo_real_works_on_every_clip(clip: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "detect", "--model", str(FOMO_REAL_DIR),
         "--source", str(video_dir() / clip), "--json", "--max-frames", "3"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["frame"] for x in lines] == [0, 1, 2]
    for line in lines:
        for det in line["detections"]:
            assert det["label"] in ("person", "car", "bicycle") and 0 <= det["cx"] <= 1 and det["box"] is None
