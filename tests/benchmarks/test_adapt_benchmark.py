"""benchmarks.adapt runs end to end (smoke settings: proves the plumbing, not the accuracy): one real clip,
the real teacher, two seeds; the JSON line carries both seeds' F1 and judges the goal on their mean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_models.teachers import TEACHERS, teachers_dir, video_dir

REPO = Path(__file__).resolve().parents[2]


def test_two_seeds_are_averaged_and_the_goal_is_judged_on_the_mean(tmp_path: Path) -> None:
    try:
        teachers_dir() / TEACHERS["yolox-nano"]
        video_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.adapt", "--smoke", "--clip", "classroom", "--seeds", "2",
         "--work", str(tmp_path), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["seeds"] == 2
    (row,) = result["clips"]
    assert row["clip"] == "classroom.gif" and "error" not in row, row
    person = row["classes"]["person"]
    assert len(person["f1_after_seeds"]) == 2
    assert person["f1_after"] == pytest.approx(sum(person["f1_after_seeds"]) / 2, abs=1e-4)
    want = person["f1_after"] >= 0.85 and (
        person["f1_before"] >= 0.85 or person["f1_after"] - person["f1_before"] >= 0.1 - 1e-9
    )
    assert person["goal"] is want
    assert sorted(p.name for p in (tmp_path / "classroom").iterdir()) == ["seed-1", "seed-2"]
    for seed in (1, 2):
        report = json.loads((tmp_path / "classroom" / f"seed-{seed}" / "report.json").read_text())
        assert report["settings"]["seed"] == seed
