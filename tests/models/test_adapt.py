"""Site adaptation (firmware_models.adapt) on real frames with the real YOLOX-nano teacher, smoke
settings: the report, the model directory only when better (and one the manifest check accepts), each
refusal as an AdaptError before any model is written, and the CLI's one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from firmware_models.adapt import (
    AdaptError,
    AdaptProgress,
    AdaptSettings,
    _held_out,
    adapt,
    base_net,
    load_base,
)
from firmware_models.detect import frames
from firmware_models.label import Frame
from firmware_models.manifest_check import check_path
from firmware_models.teachers import TEACHERS, teachers_dir, video_dir

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "firmware_models" / "reference" / "fomo-street"
CLIP = "classroom.gif"  # four seated people in every frame
SMOKE = AdaptSettings().smoke()


@pytest.fixture(scope="module")
def teacher() -> Path:
    try:
        return teachers_dir() / TEACHERS["yolox-nano"]
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    try:
        path = video_dir() / CLIP
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return [f for i, f in zip(range(20), frames(path), strict=False)]


def run(teacher: Path, clip: list[np.ndarray], out: Path, **kw) -> dict:
    kw.setdefault("settings", SMOKE)
    return adapt(teacher=teacher, base=kw.pop("base", BASE), train=clip[:12], judge=clip[12:], out=out, **kw)


def test_improved_writes_a_registry_ready_model_with_card(teacher: Path, clip: list, tmp_path: Path) -> None:
    seen: list[AdaptProgress] = []
    # min_gain -1: any result counts as better, so the writing path runs on smoke settings
    report = run(teacher, clip, tmp_path, settings=replace(SMOKE, min_gain=-1.0), on_progress=seen.append)
    assert report["improved"] is True
    assert json.loads((tmp_path / "report.json").read_text())["improved"] is True
    assert [s for i, s in enumerate(p.stage for p in seen) if i == 0 or seen[i - 1].stage != s] == [
        "label", "train", "quantize", "evaluate", "card",
    ]  # fmt: skip
    assert report["frames"] == {"train": 12, "judge": 8}
    assert len(report["loss"]) == SMOKE.steps
    assert "person" in report["before"]["per_class"]
    model = tmp_path / "model"
    assert report["model"] == {
        "name": "fomo-street",
        "version": report["model"]["version"],
        "dir": str(model),
    }
    assert check_path(model / "manifest.json") == []
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["metrics"]["adapted_from"] == "fomo-street@2.1.1"
    assert manifest["version"].startswith("2.1.2-site.")
    assert (model / "golden.npz").is_file()
    for png in ("loss.png", "f1.png", "frames.png"):
        assert (model / png).stat().st_size > 1000
        assert png in (model / "README.md").read_text()


def test_not_better_writes_report_but_no_model(teacher: Path, clip: list, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()  # an earlier run's model must not pass for this run's
    (tmp_path / "model" / "manifest.json").write_text("{}")
    report = run(teacher, clip, tmp_path, settings=replace(SMOKE, min_gain=1.0), version="2.1.2-site.x")
    assert report["improved"] is False and report["model"] is None
    assert "not better" in report["reason"]
    assert (tmp_path / "report.json").is_file()
    assert not (tmp_path / "model").exists()


def test_tune_holdout_tunes_on_frames_the_probe_never_saw(teacher: Path, clip: list, tmp_path: Path) -> None:
    """With tune_holdout the threshold comes from a first fine-tuning run that left the latest train
    frames out; the model that ships is fine-tuned on all of them."""
    settings = replace(SMOKE, tune_holdout=0.25, min_gain=-1.0)
    report = run(teacher, clip, tmp_path, settings=settings)
    assert report["tuned"]["on"].startswith("the latest 3 train frames")
    assert report["seconds"]["train_probe"] > 0 and report["seconds"]["tune"] > 0
    assert len(report["loss"]) == SMOKE.steps  # the shipped run's losses, not the probe's
    assert check_path(tmp_path / "model" / "manifest.json") == []
    plain = run(teacher, clip, tmp_path / "plain", settings=replace(SMOKE, min_gain=-1.0))
    assert plain["tuned"]["on"].startswith("the train frames")
    assert "train_probe" not in plain["seconds"]


def test_held_out_needs_a_sure_box_and_a_fit_part() -> None:
    def frame(i: int, score: float | None) -> Frame:
        boxes = [] if score is None else [("person", score, 0.1, 0.1, 0.3, 0.5)]
        return Frame("site", i, Path(""), 64, 48, boxes)

    s = replace(SMOKE, tune_holdout=0.25)
    sure = [frame(i, 0.9) for i in range(8)]
    assert _held_out(sure, s) == 2
    assert _held_out(sure, replace(s, tune_holdout=0.0)) == 0
    assert _held_out(sure, replace(s, tune_holdout=1.0)) == 0  # nothing left to fit on
    unsure_tail = sure[:6] + [frame(6, 0.2), frame(7, None)]
    assert _held_out(unsure_tail, s) == 0  # nothing sure to tune a threshold on: tune on the train frames


def test_int8_only_base_is_dequantized(tmp_path: Path) -> None:
    """The registry keeps only model.onnx (+ golden): float weights come back from the int8 weights."""
    for name in ("manifest.json", "model.onnx", "golden.npz"):
        shutil.copy(BASE / name, tmp_path / name)
    from_int8, from_fp32 = load_base(tmp_path), load_base(BASE)
    assert (from_int8.source, from_fp32.source) == ("model.onnx", "model.fp32.onnx")
    a, b = base_net(from_int8).state_dict(), base_net(from_fp32).state_dict()
    for key in b:
        scale = float(b[key].abs().max())
        assert float((a[key] - b[key]).abs().max()) <= 0.02 * scale + 1e-3, key


def test_refusals(teacher: Path, clip: list, tmp_path: Path) -> None:
    cases = {
        "no such file": dict(teacher=tmp_path / "missing.onnx"),
        "too few train": dict(settings=replace(SMOKE, min_train_frames=50)),
        "too few judge": dict(settings=replace(SMOKE, min_judge_frames=50)),
        "not a FOMO student": dict(base=REPO / "firmware_models" / "reference" / "crop-classifier"),
        "nothing sure on the": dict(judge=[np.zeros((96, 160, 3), np.uint8)] * 4),
        "diverged": dict(settings=replace(SMOKE, lr=1e4, steps=6)),
    }
    for want, kw in cases.items():
        if "base" in kw and not (kw["base"] / "manifest.json").is_file():
            continue
        args = dict(
            teacher=teacher, base=BASE, train=clip[:12], judge=clip[12:], out=tmp_path / "out", settings=SMOKE
        )
        with pytest.raises(AdaptError, match=want):
            adapt(**(args | kw))
        assert not (tmp_path / "out" / "model").exists(), want


def test_undecodable_teacher(clip: list, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(AdaptError, match="teacher"):
        adapt(teacher=bad, base=BASE, train=clip[:12], judge=clip[12:], out=tmp_path / "out", settings=SMOKE)


@pytest.mark.parametrize(
    "train,judge,want",
    [
        ("0:10", "5:15", "overlap"),
        ("5:5", "6:9", "empty"),
        ("0:5", "x", "expected A:B"),
        ("0:5", "6:9999", "has"),
    ],
)
def test_cli_bad_ranges_exit_2(train: str, judge: str, want: str, tmp_path: Path) -> None:
    clip = REPO / "tests" / "data" / "people-walking.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "adapt", "--teacher", "t", "--base", str(BASE),
         "--source", str(clip), "--train-frames", train, "--judge-frames", judge, "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert want in proc.stderr and proc.stderr.count("\n") == 1


def test_cli_unopenable_clip(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "adapt", "--teacher", "t", "--base", str(BASE),
         "--source", str(tmp_path / "none.mp4"), "--train-frames", "0:5", "--judge-frames", "5:9",
         "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "cannot open" in proc.stderr


def test_cli_runs_and_prints_the_report(teacher: Path, tmp_path: Path) -> None:
    clip = REPO / "tests" / "data" / "people-walking.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_models", "adapt", "--teacher", str(teacher), "--base", str(BASE),
         "--source", str(clip), "--train-frames", "0:20", "--judge-frames", "20:30", "--out", str(tmp_path),
         "--steps", "2", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == {"train": 20, "judge": 10} and len(report["loss"]) == 2
    assert json.loads((tmp_path / "report.json").read_text())["after"] == report["after"]
    assert (tmp_path / "model").is_dir() == report["improved"]
