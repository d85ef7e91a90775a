"""adapt()'s model directory is what the hub registry accepts as is (``cloud-hub models add out/model``):
the manifest, the int8 model it names and the golden self-test, with a version above the base."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from firmware_models.adapt import AdaptSettings, adapt
from firmware_models.teachers import TEACHERS, teachers_dir
from shared.rollout import semver_key
from tests.support.adapt import FOMO, clip_frames, register


def test_adapted_model_directory_registers(app, tmp_path: Path) -> None:
    try:
        teacher = teachers_dir() / TEACHERS["yolox-nano"]
        frames = clip_frames(10, clip="classroom.gif", step=2)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    settings = replace(AdaptSettings().smoke(), min_gain=-1.0)  # always "better": the writing path runs
    report = adapt(
        teacher=teacher, base=FOMO, train=frames[:6], judge=frames[6:], out=tmp_path, settings=settings
    )
    row = register(app, tmp_path / "model")
    assert row.ref == f"fomo-street@{report['model']['version']}"
    assert semver_key(row.version) > semver_key("2.1.1")
    assert row.manifest["metrics"]["adapted_from"] == "fomo-street@2.1.1"
