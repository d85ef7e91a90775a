"""Issue 22 acceptance: both real COCO teachers go, unaided, through import → quantize (calibration from
the shared real clips) → evaluate → ``cloud-hub models add`` → a rollout to a real edge agent over real
Mosquitto → person events on one-by-one-person-detection.mp4 from that model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cloud_hub.rollout import campaigns, registry
from edge_agent.config import parse_config
from firmware_models.cli import main as toolchain
from firmware_models.teachers import PERSON_CLIP, TEACHERS, teachers_dir, video_dir
from shared.manifest import load_manifest
from tests.rollout.support import wait_for
from tests.support.recording_agent import RecordingAgent


def agent_config(mosquitto, tmp_path: Path, baseline: Path, public_key: Path) -> dict:
    return {
        "device": {"id": "byom-cam"},
        "mqtt": {"url": mosquitto.url, "reconnect_min_s": 1, "reconnect_max_s": 1},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "telemetry": {"interval_s": 1},
        "cameras": [
            {
                "name": "hall",
                "source": {"type": "file", "path": str(video_dir() / PERSON_CLIP), "loop": True},
                "detect_fps": 10,
                "model": {"path": str(baseline)},
            }
        ],
        "updater": {
            "store_dir": str(tmp_path / "models"),
            "hub_public_key": str(public_key),
            # A teacher is ~40x the tiny reference model's latency: the operator sets an absolute budget.
            "health": {"min_inferences": 10, "max_latency_ratio": None, "max_latency_ms_p95": 1000},
        },
    }


def bring_your_own(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The documented steps, as an ML engineer runs them; returns the int8 package folder."""
    source = teachers_dir() / TEACHERS[name]
    fp32, int8 = tmp_path / f"{name}-fp32", tmp_path / f"{name}-int8"
    assert toolchain(["import", str(source), "--out", str(fp32), "--name", name]) == 0
    assert "TODO: nothing" in capsys.readouterr().out
    calib = ["--calib", str(video_dir()), "--count", "60"]
    assert toolchain(["quantize", "--manifest", str(fp32 / "manifest.json"), *calib, "--out", str(int8)]) == 0
    printed = capsys.readouterr().out
    manifest, model = load_manifest(int8)
    assert manifest.precision == "int8" and manifest.golden is not None, printed
    assert manifest.metrics["agreement_with_fp32"] >= 0.97, printed
    assert model.stat().st_size <= 0.35 * (int8 / "model.fp32.onnx").stat().st_size, printed
    report = tmp_path / f"{name}-eval.json"
    evaluate = ["evaluate", "--manifest", str(int8 / "manifest.json"), "--data", str(video_dir())]
    assert toolchain([*evaluate, "--count", "20", "--runs", "10", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert {"exact", "fast"} <= set(result["latency_by_mode"]) and result["recommendation"]["text"]
    capsys.readouterr()
    return int8


@pytest.mark.slow
def test_both_teachers_from_export_to_person_events_on_a_real_agent(
    mosquitto, rollout_hub, baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packages = {name: bring_your_own(name, tmp_path, capsys) for name in sorted(TEACHERS)}
    runner = rollout_hub.app.test_cli_runner()
    rows = {}
    for name, folder in packages.items():
        for package in (folder, folder / "fp32"):  # the fp32 variant goes in too, with its own golden
            added = runner.invoke(
                args=[
                    "models",
                    "add",
                    str(package / "model.onnx"),
                    "--manifest",
                    str(package / "manifest.json"),
                ]
            )
            assert added.exit_code == 0, added.output
        with rollout_hub.session() as db:
            rows[name] = registry.find(db, f"{name}@1.0.0")
            assert registry.find(db, f"{name}@1.0.0+fp32").size_bytes > rows[name].size_bytes

    config = parse_config(yaml.safe_dump(agent_config(mosquitto, tmp_path, baseline, rollout_hub.public_key)))
    agent = RecordingAgent(config).start()
    try:
        for name, row in rows.items():
            with rollout_hub.session() as db:
                campaign = campaigns.create(db, rollout_hub.key, row, "byom-cam").id
            wait_for(
                lambda c=campaign: rollout_hub.summary(c)["state"] == "completed", 120, f"{name} rolled out"
            )
            assert agent.cameras[0].pipeline.model.ref == row.ref
            wait_for(
                lambda ref=row.ref: [e for e in agent.emitted if e.model == ref and e.label == "person"],
                90,
                f"person events from {row.ref}",
            )
    finally:
        agent.stop()
