"""``python -m firmware_models label`` with the real YOLOX-nano teacher on real frames (a few, so fast),
and the clear errors: an undecodable teacher, an unopenable clip, a bad class map, a dataset with no
labels — and distillation refusing to start on an empty dataset."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware_models.detect import frames
from firmware_models.distil import FOMO_REAL, distil, targets
from firmware_models.label import LabelError, check_class_map, label, load_dataset, load_teacher
from firmware_models.teachers import TEACHERS, import_teacher, teachers_dir, video_dir

REPO = Path(__file__).resolve().parents[2]
CLASSROOM = "classroom.gif"  # four seated people in every frame (benchmarks/data/hand_counts)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("yolox")
    import_teacher("yolox-nano", out)
    return out


@pytest.fixture(scope="module")
def few_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real classroom frames as a folder of PNG images."""
    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(frames(video_dir() / CLASSROOM)):
        if i % 10 == 0:
            cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
        if i >= 30:
            break
    return folder


def test_label_writes_coco_json_with_scores_and_a_summary(
    teacher: Path, few_frames: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "label", "--teacher", str(teacher),
         "--source", str(few_frames), "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 4
    assert summary["boxes"]["person"] >= 12  # four people per frame; the teacher finds at least three
    assert summary["frames_with_none"] == 0
    data = json.loads((out / "annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["person", "car", "bicycle"]
    assert len(data["images"]) == 4 and all((out / i["file_name"]).exists() for i in data["images"])
    for ann in data["annotations"]:
        assert 0.3 <= ann["score"] <= 1.0 and ann["teacher_label"] in (
            "person",
            "car",
            "bus",
            "truck",
            "bicycle",
            "motorcycle",
        )
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 480.5 and y + h <= 270.5
    loaded, names, info = load_dataset(out)
    assert names == ("person", "car", "bicycle") and info["class_map"]["bus"] == "car"
    # the seated people sit in the frame's lower two thirds: the boxes came back in frame coordinates
    centres = [((b[2] + b[4]) / 2, (b[3] + b[5]) / 2) for f in loaded for b in f.boxes if b[1] >= 0.5]
    assert centres and all(0.0 < cx < 1.0 and 0.3 < cy < 1.0 for cx, cy in centres)


def test_unopenable_clip_is_named_before_the_teacher_runs(teacher: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(LabelError, match="broken.mp4: cannot open"):
        label(teacher, [broken], tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds" / "annotations.json").exists()
    with pytest.raises(LabelError, match="missing.mp4: no such file"):
        label(teacher, [tmp_path / "missing.mp4"], tmp_path / "ds", progress=False)


def test_teacher_the_runtime_cannot_decode_is_a_clear_error(teacher: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    shutil.copytree(teacher, wrong)
    manifest = json.loads((wrong / "manifest.json").read_text())
    manifest["decoder"]["type"] = "ssd"  # a YOLOX grid described as SSD boxes + scores
    (wrong / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LabelError, match="teacher .*wrong"):
        load_teacher(wrong)
    with pytest.raises(LabelError, match="exactly one .onnx"):
        load_teacher(teachers_dir())  # two exports there: which one is not guessed
    assert load_teacher(teachers_dir() / TEACHERS["yolox-nano"], tmp_path).manifest.task == "detection"


def test_bad_class_map_names_the_class(teacher: Path) -> None:
    manifest = load_teacher(teacher).manifest
    with pytest.raises(LabelError, match="pedestrian"):
        check_class_map({"person": "pedestrian"}, manifest, ("person", "car"))
    with pytest.raises(LabelError, match="no class horse"):
        check_class_map({"horse": "person"}, manifest, ("person", "car"))
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "label", "--teacher", str(teacher), "--source",
         str(video_dir() / CLASSROOM), "--out", "/tmp/never", "--map", "person"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "expected TEACHER=STUDENT" in proc.stderr


def test_no_labels_is_an_error_and_training_refuses_an_empty_dataset(teacher: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(3):
        cv2.imwrite(str(blank / f"{i}.png"), np.full((270, 480, 3), 128, np.uint8))
    with pytest.raises(LabelError, match="no labels"):
        label(teacher, [blank], tmp_path / "ds", progress=False)
    with pytest.raises(LabelError, match="no labels"):
        load_dataset(tmp_path / "ds")
    with pytest.raises(LabelError, match="empty dataset"):
        distil(FOMO_REAL.smoke(), [], progress=False)


def test_soft_targets_put_the_teacher_score_on_the_centre_cell() -> None:
    soft, weight = targets([("person", 0.8, 0.1, 0.2, 0.3, 0.8), ("car", -1.0, 0.6, 0.6, 0.7, 0.7)],
                           FOMO_REAL.labels, FOMO_REAL.grid)  # fmt: skip
    gh, gw = FOMO_REAL.grid
    i, j = int(0.5 * gh), int(0.2 * gw)
    assert soft[1, i, j] == pytest.approx(0.8) and soft[0, i, j] == pytest.approx(0.2) and weight[i, j] > 1
    assert weight[i - 2, j] == 0.0  # inside the middle half of the box: don't care
    assert weight[int(0.65 * gh), int(0.65 * gw)] == 0.0  # a hidden box: don't care
    assert weight[2, gw - 2] == 1.0 and soft[0, 2, gw - 2] == 1.0  # background elsewhere
