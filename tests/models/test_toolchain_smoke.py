"""Every toolchain step on tiny data (one epoch, a few samples): proves the steps run and connect."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from firmware_models.build import build_all, retune
from firmware_models.cli import main
from firmware_models.manifest_check import check_path
from firmware_models.onnx_meta import get_props
from firmware_models.reference import REFERENCE_MODELS
from shared.manifest import load_manifest
from synthetic_world import SyntheticVideo, write_video


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("smoke")
    result = build_all(smoke=True, out_root=root / "models", docs_dir=root / "docs", progress=False)
    return root / "models", root / "docs", result


def test_build_all_smoke_produces_complete_bundles(smoke_build) -> None:
    models, docs, result = smoke_build
    assert set(result["models"]) == {"crop-classifier", "fomo-street"}
    for name in result["models"]:
        manifest, model_path = load_manifest(models / name)  # sha256 + size verified
        assert [p for p in check_path(models / name / "manifest.json") if not p.startswith("note:")] == []
        assert (models / name / "model.fp32.onnx").exists() and (models / name / "eval.png").exists()
        report = json.loads((models / name / "eval.json").read_text())
        assert report["name"] == name and report["int8"]["bytes"] == manifest.size_bytes
        assert manifest.golden is not None and (models / name / manifest.golden.file).exists()
        card = (docs / f"{name}.md").read_text()
        assert f"# Model card: {name}" in card and str(report["int8"]["metric"]) in card
        model = onnx.load(str(model_path))
        assert model.opset_import[0].version >= 17
        props = get_props(model)
        assert json.loads(props["edgesight.labels"]) == list(manifest.labels)
        assert json.loads(props["edgesight.decoder"])["type"] == manifest.decoder.type.value


def test_cli_steps_one_by_one(tmp_path: Path, smoke_build) -> None:
    models, _, _ = smoke_build
    assert main(["render", "--out", str(tmp_path / "clip.mp4"), "--duration", "1", "--seed", "2"]) == 0
    truth = json.loads((tmp_path / "clip.truth.json").read_text())
    assert len(truth["frames"]) == 10 and "crosswalk" in truth["lines"]
    assert main(["render", "--out", str(tmp_path / "stills"), "--stills", "4"]) == 0
    assert len(list((tmp_path / "stills").glob("*.png"))) == 4

    ckpt = tmp_path / "fomo.pt"
    assert main(["train", "fomo-street", "--smoke", "--out", str(ckpt)]) == 0
    fp32 = tmp_path / "fomo.fp32.onnx"
    assert main(["export", "fomo-street", "--checkpoint", str(ckpt), "--out", str(fp32)]) == 0
    assert get_props(onnx.load(str(fp32)))["edgesight.name"] == "fomo-street"

    # a user manifest for the fp32 file, from the smoke build's manifest
    user = json.loads((models / "fomo-street" / "manifest.json").read_text())
    for key in ("sha256", "size_bytes", "golden", "metrics", "quantization"):
        user.pop(key, None)
    user.update(file=fp32.name, precision="fp32")
    (tmp_path / "user.json").write_text(json.dumps(user))
    assert main(["check-manifest", str(tmp_path / "user.json")]) == 0

    video = write_video(SyntheticVideo(seed=5, duration_s=1.0), tmp_path / "calib.mp4")
    for calib, out in (
        (str(video), "q_video"),
        (str(tmp_path / "stills"), "q_folder"),
        ("rendered", "q_rendered"),
    ):
        assert (
            main(
                [
                    "quantize",
                    "--manifest",
                    str(tmp_path / "user.json"),
                    "--calib",
                    calib,
                    "--count",
                    "4",
                    "--out",
                    str(tmp_path / out),
                    "--min-agreement",  # a one-epoch smoke model on 4 frames: agreement is not under test
                    "0",
                ]
            )
            == 0
        )
        manifest, _ = load_manifest(tmp_path / out)
        # 4 asked, as many again held out for the agreement check: the 4 stills give 2 + 2, and say so
        used = 2 if out == "q_folder" else 4
        assert manifest.quantization["calibration_frames"] == used and manifest.quantization["per_channel"]
        assert manifest.quantization["calibration_frames_asked"] == 4

    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(tmp_path / "q_video" / "manifest.json"),
                "--fp32",
                str(fp32),
                "--count",
                "4",
                "--runs",
                "3",
                "--json",
                str(report),
            ]
        )
        == 0
    )
    data = json.loads(report.read_text())
    assert data["metric"] == "centroid_f1" and data["data"]["samples"] == 4
    assert set(data["int8"]) >= {"metric", "bytes", "p50_ms", "p99_ms"}

    assert main(["card", str(models / "crop-classifier"), "--out", str(tmp_path / "card.md")]) == 0
    assert "crop-classifier" in (tmp_path / "card.md").read_text()


def test_bad_calibration_source_is_a_clear_error(tmp_path: Path, smoke_build, capsys) -> None:
    models, _, _ = smoke_build
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "quantize",
            "--manifest",
            str(models / "fomo-street" / "manifest.json"),
            "--model",
            str(models / "fomo-street" / "model.fp32.onnx"),
            "--calib",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "q"),
        ]
    )
    assert code == 2
    assert "no images" in capsys.readouterr().err


def test_retune_releases_the_same_weights_under_a_new_version(tmp_path: Path, smoke_build) -> None:
    models, _, _ = smoke_build
    built = tmp_path / "fomo-street"
    shutil.copytree(models / "fomo-street", built)
    before, _ = load_manifest(built)
    golden_before = dict(np.load(built / "golden.npz"))
    ref = replace(REFERENCE_MODELS["fomo-street"].smoke(), version="9.0.0")
    with pytest.raises(ValueError, match="bump the version"):
        retune(replace(ref, version=before.version), built, tmp_path / "docs")
    report = retune(ref, built, tmp_path / "docs")
    after, model_path = load_manifest(built)  # sha256 and size of the re-stamped file verified
    assert after.version == "9.0.0" and report["build"]["retuned_from"] == before.version
    assert get_props(onnx.load(str(model_path)))["edgesight.version"] == "9.0.0"
    golden_after = dict(np.load(built / "golden.npz"))  # the same weights give the same outputs
    assert golden_after.keys() == golden_before.keys()
    assert all(np.array_equal(golden_after[k], golden_before[k]) for k in golden_before)
    assert "# Model card: fomo-street 9.0.0" in (tmp_path / "docs" / "fomo-street.md").read_text()


def test_skip_head_builds_to_an_int8_model_the_agent_runs(tmp_path: Path) -> None:
    """The ``skip`` FOMO head goes through every step (train, export, quantize, evaluate) and the edge
    runtime decodes its int8 output on the same 40x24 grid."""
    from edge_agent.config import RuntimeConfig
    from firmware_models.build import build
    from model_runtime import ModelRuntime, preprocess

    ref = replace(REFERENCE_MODELS["fomo-street"].smoke(), head="skip")
    report = build(ref, tmp_path / "fomo-street", tmp_path / "docs", progress=False, latency_runs=5)
    assert report["name"] == "fomo-street" and 0.0 <= report["int8"]["metric"] <= 1.0
    manifest, model_path = load_manifest(tmp_path / "fomo-street")
    assert manifest.decoder.params["grid"] == [24, 40]
    ops = {node.op_type for node in onnx.load(str(model_path)).graph.node}
    assert {"DepthToSpace", "Add", "QuantizeLinear"} <= ops and "Resize" not in ops
    runtime = ModelRuntime(tmp_path / "fomo-street", RuntimeConfig(intra_op_threads=1, warmup_runs=0))
    frame = SyntheticVideo(seed=5, width=320, height=192, fps=10.0, duration_s=1.0).frame(0).image
    tensor, _ = preprocess(frame, manifest.input)
    (heat,) = runtime.infer(tensor)
    assert heat.shape == (1, len(manifest.labels), 24, 40)
    assert np.allclose(heat.sum(axis=1), 1.0, atol=0.02)  # per-cell class probabilities
    assert all(d.label in manifest.labels[1:] for d in runtime.detect(frame))
