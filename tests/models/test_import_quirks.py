"""A quirk zoo: small nets built with onnx.helper that carry real exporters' quirks go through
``import`` → ``quantize`` → the model runtime, or are refused with a message naming the problem; never
an exit 0 with a float model called int8."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from firmware_models.cli import main
from firmware_models.quantize import quantized_weights
from model_runtime import ModelRuntime
from shared.manifest import load_manifest
from tests.models.quirk_zoo import Quirks, build

CASES = {
    "plain": (Quirks(), []),
    "unnamed-nodes": (Quirks(unnamed=True), ["nodes had no (or a repeated) name: named"]),
    "initializers-as-inputs": (Quirks(initializers_as_inputs=True), ["initializers were also graph inputs"]),
    "opset-9": (Quirks(opset=9), ["opset 9 → 13"]),
    "opset-11": (Quirks(opset=11), ["opset 11 → 13"]),
    "scores-first": (Quirks(scores_first=True), []),
    "nhwc": (Quirks(nhwc=True), []),
    "dynamic-batch": (Quirks(dynamic_batch=True), ["dynamic input batch N → 1"]),
    "all-at-once": (
        Quirks(True, True, 9, True, True, True),
        ["named", "initializers were also graph inputs", "opset 9 → 13", "batch N → 1"],
    ),
}


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(folder / f"{i:02d}.png"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    return folder


def quantize(manifest: Path, calib: Path, out: Path, *extra: str) -> int:
    args = ["quantize", "--manifest", str(manifest), "--calib", str(calib), "--count", "6", "--out", str(out)]
    # Random weights on noise: agreement is not under test here (see the refusal test below).
    return main([*args, "--min-agreement", "0", *extra])


@pytest.mark.parametrize("case", list(CASES))
def test_quirk_is_fixed_and_the_int8_model_runs_in_the_runtime(
    case: str, tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quirks, said = CASES[case]
    source = build(tmp_path / "export.onnx", quirks)
    assert main(["import", str(source), "--out", str(tmp_path / "fp32")]) == 0
    report = capsys.readouterr().out
    for words in said:
        assert words in report, report
    assert "outputs equal to the original's" in report
    fixed = onnx.load(str(tmp_path / "fp32" / "model.onnx"))
    assert [i.name for i in fixed.graph.input] == ["input"]
    assert all(n.name for n in fixed.graph.node)
    assert fixed.opset_import[0].version >= 13
    manifest, _ = load_manifest(tmp_path / "fp32")
    assert manifest.input.layout == ("NHWC" if quirks.nhwc else "NCHW")
    assert manifest.input.shape[0] == 1 and manifest.decoder.type.value == "ssd"
    roles = {o.name: o.role for o in manifest.outputs}
    assert roles == {"boxes": "boxes", "scores": "scores"}
    assert [o.name for o in manifest.outputs] == (
        ["scores", "boxes"] if quirks.scores_first else ["boxes", "scores"]
    )
    assert "labels: name the 3 classes" in report  # what the user must still fill in, said plainly

    assert quantize(tmp_path / "fp32" / "manifest.json", calib, tmp_path / "int8") == 0
    printed = capsys.readouterr().out
    assert "calibration: 6 frames used of 6 asked" in printed
    int8, int8_path = load_manifest(tmp_path / "int8")
    assert int8.precision == "int8" and int8.golden is not None
    assert quantized_weights(onnx.load(str(int8_path))) >= 3
    runtime = ModelRuntime(tmp_path / "int8")
    frame = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    for det in runtime.detect(frame):
        assert det.label in manifest.labels and all(0.0 <= v <= 1.0 for v in det.box)
    fp32_variant, _ = load_manifest(tmp_path / "int8" / "fp32")
    assert fp32_variant.precision == "fp32" and fp32_variant.version == "1.0.0+fp32"


def imported(tmp_path: Path, quirks: Quirks) -> tuple[Path, Path]:
    source = build(tmp_path / "export.onnx", quirks)
    assert main(["import", str(source), "--out", str(tmp_path / "fp32")]) == 0
    return source, tmp_path / "fp32" / "manifest.json"


def test_an_opset_11_export_is_refused_by_quantize_until_imported(
    tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, manifest = imported(tmp_path, Quirks(opset=11))
    assert quantize(manifest, calib, tmp_path / "int8", "--model", str(source)) == 1
    err = capsys.readouterr().err
    assert "opset 11 < 13" in err and "python -m firmware_models import" in err
    assert not (tmp_path / "int8" / "manifest.json").exists()


def test_unnamed_nodes_are_named_so_softmax_stays_float_by_op_type(
    tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, manifest = imported(tmp_path, Quirks(unnamed=True))
    assert quantize(manifest, calib, tmp_path / "int8", "--model", str(source), "--quantize-tail") == 0
    info = json.loads((tmp_path / "int8" / "manifest.json").read_text())["quantization"]
    assert info["named_nodes"] == 10 and "" not in info["float_nodes"]
    model = onnx.load(str(tmp_path / "int8" / "model.onnx"))
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    assert [n.name for n in softmax] == info["float_nodes"] == ["Softmax_9"]
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers[softmax[0].input[0]] == "DequantizeLinear"  # fed float; its own output stays float
    assert producers[model.graph.output[1].name] == "Softmax"


def test_an_op_the_quantizer_cannot_handle_leaves_nothing_quantized_and_is_refused(
    tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, manifest = imported(tmp_path, Quirks(einsum=True))
    capsys.readouterr()
    # The Conv before the Einsum heads is kept in float as a first layer: nothing int8 remains.
    assert quantize(manifest, calib, tmp_path / "int8", "--float-first", "1") == 1
    err = capsys.readouterr().err
    assert "nothing was quantized" in err and "float model called int8" in err
    assert not (tmp_path / "int8" / "manifest.json").exists()


def test_agreement_below_the_bound_exits_1_and_writes_no_manifest(
    tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, manifest = imported(tmp_path, Quirks())
    args = ["quantize", "--manifest", str(manifest), "--calib", str(calib), "--count", "6"]
    assert (
        main([*args, "--out", str(tmp_path / "int8"), "--min-agreement", "1.01", "--float-first", "0"]) == 1
    )
    err = capsys.readouterr().err
    assert "int8 agrees with fp32 on" in err and "< --min-agreement 1.01" in err
    assert not (tmp_path / "int8" / "manifest.json").exists()


def test_fewer_calibration_frames_than_asked_are_reported(
    tmp_path: Path, calib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, manifest = imported(tmp_path, Quirks())
    capsys.readouterr()
    args = ["quantize", "--manifest", str(manifest), "--calib", str(calib), "--count", "300"]
    assert main([*args, "--out", str(tmp_path / "int8"), "--min-agreement", "0"]) == 0
    out = capsys.readouterr().out
    assert "calibration: 6 frames used of 300 asked" in out and "only 6 calibration frames of 300" in out
    info = json.loads((tmp_path / "int8" / "manifest.json").read_text())["quantization"]
    assert (info["calibration_frames"], info["calibration_frames_asked"]) == (6, 300)


def test_import_refuses_a_model_whose_outputs_fit_no_decoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["out"], name="relu")],
        "odd",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "odd.onnx")
    )
    # [1, 3, 8, 8] reads as a FOMO map of 3 classes: a guess, said as such; a 5-D output fits nothing.
    graph.output[0].CopyFrom(helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8, 1]))
    graph.node[0].CopyFrom(helper.make_node("Unsqueeze", ["input", "axis"], ["out"], name="u"))
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([4], np.int64), "axis"))
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "odd5.onnx")
    )
    assert main(["import", str(tmp_path / "odd5.onnx"), "--out", str(tmp_path / "out")]) == 1
    assert "no decoder fits outputs" in capsys.readouterr().err


def test_every_option_of_the_byom_commands_has_help_text() -> None:
    import argparse

    from firmware_models.cli import parser

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("import", "quantize", "evaluate", "detect"):
        missing = [
            a.dest
            for a in sub.choices[command]._actions
            if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
        ]
        assert missing == [], (command, missing)
