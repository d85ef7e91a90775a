"""The real teachers through the one runtime: ``detect`` prints what the agent would see, and the
toolchain's evaluation and the agent's pipeline give identical detections for the same frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_agent.config import parse_config
from edge_agent.pipeline import CameraPipeline
from firmware_models.detect import frames
from firmware_models.evaluate import detections, predict
from firmware_models.teachers import PERSON_CLIP, TEACHERS, import_teacher, video_dir
from model_runtime import ModelRuntime

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=sorted(TEACHERS))
def teacher(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param)
    report = import_teacher(request.param, out)
    assert not report.todo, report.text()  # nothing left for the user: family, labels, preprocessing known
    return out


def clip_frames(count: int, step: int = 25) -> list:
    return [f for i, f in enumerate(frames(video_dir() / PERSON_CLIP)) if i % step == 0][:count]


def test_detect_prints_one_json_object_per_frame_through_the_runtime(teacher: Path) -> None:
    clip = video_dir() / PERSON_CLIP
    out = subprocess.run(
        [sys.executable, "-m", "firmware_models", "detect", "--model", str(teacher), "--source", str(clip)]
        + ["--json", "--max-frames", "150"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(150))
    runtime = ModelRuntime(teacher)
    images = [f for i, f in enumerate(frames(clip)) if i < 150]
    people = 0
    for line, image in zip(lines, images, strict=True):
        expected = runtime.detect(image)
        assert [d["label"] for d in line["detections"]] == [d.label for d in expected]
        for got, want in zip(line["detections"], expected, strict=True):
            assert got["box"] == [round(v, 5) for v in want.box]
            assert 0 <= got["cx"] <= 1 and 0 <= got["cy"] <= 1 and got["score"] == round(want.score, 4)
        people += sum(d["label"] == "person" for d in line["detections"])
    assert people >= 20  # someone walks in within the first 150 frames


def test_toolchain_evaluation_and_the_agent_see_identical_detections(teacher: Path, tmp_path: Path) -> None:
    manifest_path = teacher / "manifest.json"
    runtime = ModelRuntime(teacher)
    images = clip_frames(12)
    tool = detections(predict(runtime.model_path, runtime.manifest, images), runtime.manifest, images)
    config = parse_config(
        yaml.safe_dump(
            {
                "device": {"id": "cam-parity"},
                "outbox": {"path": str(tmp_path / "outbox.db")},
                "cameras": [
                    {
                        "name": "c",
                        "source": {"type": "file", "path": str(video_dir() / PERSON_CLIP)},
                        "model": {"path": str(manifest_path.parent)},
                    }
                ],
            }
        )
    )
    agent = CameraPipeline(config.cameras[0], config.runtime)
    seen = [agent.detect(image) for image in images]
    assert sum(len(d) for d in seen) >= 5
    assert seen == tool  # same labels, scores and boxes, float for float
