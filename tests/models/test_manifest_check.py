"""check-manifest: every mismatch between a manifest and its model is named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_models.cli import main
from firmware_models.manifest_check import check_path
from tests.models.toy_models import ssd_manifest, write_fp32_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_fp32_bundle(tmp_path / "ssd")


def _with(bundle: Path, **changes) -> Path:
    data = ssd_manifest()
    for dotted, value in changes.items():
        target = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    bundle.write_text(json.dumps(data))
    return bundle


def test_matching_manifest_passes_and_notes_initializer_inputs(bundle: Path, capsys) -> None:
    problems = check_path(bundle)
    assert [p for p in problems if not p.startswith("note:")] == []
    assert any("initializer(s) also listed as graph inputs" in p for p in problems)
    assert main(["check-manifest", str(bundle)]) == 0
    assert "ok: the manifest matches the model" in capsys.readouterr().out


def test_wrong_input_name(bundle: Path) -> None:
    _with(bundle, input__name="images")
    assert "input.name: manifest says 'images' but the model's input is 'input'" in check_path(bundle)


def test_wrong_input_shape(bundle: Path) -> None:
    _with(bundle, input__shape=[1, 3, 64, 64])
    assert (
        "input.shape: manifest says [1, 3, 64, 64] (NCHW) but the model's input is [1, 3, 96, 96]"
        in check_path(bundle)
    )


def test_wrong_layout_for_colour(bundle: Path) -> None:
    _with(bundle, input__layout="NHWC")
    assert any(
        p.startswith("input.color: RGB needs 3 channel(s) but input.shape with layout NHWC has 96")
        for p in check_path(bundle)
    )


def test_wrong_dtype(bundle: Path) -> None:
    _with(bundle, input__dtype="uint8")
    assert "input.dtype: manifest says 'uint8' but the model takes 'float32'" in check_path(bundle)


def test_unknown_output_name(bundle: Path) -> None:
    data = ssd_manifest()
    data["outputs"][0]["name"] = "bboxes"
    bundle.write_text(json.dumps(data))
    assert (
        "outputs: manifest names output 'bboxes' but the model's outputs are ['boxes', 'scores']"
        in check_path(bundle)
    )


def test_wrong_output_shape(bundle: Path) -> None:
    data = ssd_manifest()
    data["outputs"][1]["shape"] = [1, 49, 4]
    bundle.write_text(json.dumps(data))
    assert "outputs[scores].shape: manifest says [1, 49, 4] but the model produces [1, 49, 3]" in check_path(
        bundle
    )


def test_label_count_mismatch(bundle: Path) -> None:
    data = ssd_manifest()
    data["labels"] = ["background", "red", "blue", "green"]
    data["outputs"][1]["shape"] = [1, 49, "n"]
    bundle.write_text(json.dumps(data))
    assert "labels: 4 labels but ssd scores are [1, 49, 3] (want [1, K, 4])" in check_path(bundle)


def test_wrong_decoder_type(bundle: Path) -> None:
    _with(bundle, decoder__type="yolo")
    problems = check_path(bundle)
    assert any(
        p.startswith("labels: 3 labels fit neither yolo v5 [1, K, 8] nor v8 [1, 7, K]") for p in problems
    )


def test_sha_and_size_mismatch(bundle: Path) -> None:
    _with(bundle, sha256="0" * 64, size_bytes=1)
    problems = check_path(bundle)
    assert any(p.startswith("sha256: manifest says 0000") for p in problems)
    assert any(p.startswith("size_bytes: manifest says 1 but the file has") for p in problems)


def test_invalid_manifest_fields_are_listed(bundle: Path, capsys) -> None:
    _with(bundle, version="one", decoder__type="magic")
    problems = check_path(bundle)
    assert any("version: String should match pattern" in p for p in problems)
    assert any("decoder.type: Input should be" in p for p in problems)
    assert main(["check-manifest", str(bundle)]) == 1
    assert "problem(s): the manifest does not describe the model" in capsys.readouterr().err


def test_missing_and_corrupt_model(bundle: Path) -> None:
    _with(bundle, file="nope.onnx")
    assert check_path(bundle)[0].startswith("file: model file")
    _with(bundle)
    (bundle.parent / "model.fp32.onnx").write_bytes(b"not onnx at all")
    assert any("not a readable ONNX file" in p for p in check_path(bundle))


def test_fomo_grid_and_background_checks() -> None:
    from firmware_models import REFERENCE_DIR

    manifest = json.loads((REFERENCE_DIR / "fomo-street" / "manifest.json").read_text())
    manifest["decoder"]["params"]["stride"] = 16
    manifest.pop("sha256")
    manifest["labels"] = manifest["labels"][:4]
    manifest["decoder"]["params"].pop("merge_gap")  # its label went with the fifth
    manifest["outputs"][0]["shape"] = None
    manifest["decoder"]["background_index"] = None
    path = REFERENCE_DIR / "fomo-street" / "manifest.json"
    from firmware_models.manifest_check import check
    from shared.manifest import parse_manifest

    problems = check(parse_manifest(manifest), path.parent / "model.onnx")
    assert "labels: 4 labels but the heat map (NCHW) [1, 5, 24, 40] has 5 classes" in problems
    assert "decoder.background_index: fomo needs the index of the background class" in problems
    assert "decoder.params.stride: 16 implies a 6x10 grid but the model's is 24x40" in problems
