"""Bring your own model: a hand-built SSD-style fp32 model (initializers listed as inputs, like old
exports) is checked, quantized by the tool with calibration from a folder of images, and the int8 model
finds the squares drawn for it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx

from firmware_models.cli import main
from firmware_models.evaluate import EvalSet, compare, detections, predict
from model_runtime.preprocessing import prepare
from shared.manifest import load_manifest
from tests.models.toy_models import draw_scene, write_fp32_bundle


def test_quantize_and_evaluate_third_party_ssd(tmp_path: Path) -> None:
    manifest_path = write_fp32_bundle(tmp_path / "fp32")
    assert main(["check-manifest", str(manifest_path)]) == 0

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        cv2.imwrite(str(calib / f"{i:03d}.png"), draw_scene(rng)[0])
    out = tmp_path / "int8"
    assert (
        main(
            [
                "quantize",
                "--manifest",
                str(manifest_path),
                "--calib",
                str(calib),
                "--count",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )

    manifest, int8_path = load_manifest(out)  # sha256 and size verified
    assert manifest.precision == "int8"
    assert manifest.quantization["stripped_initializer_inputs"]
    model = onnx.load(str(int8_path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert [i.name for i in model.graph.input] == ["input"]
    assert main(["check-manifest", str(out / "manifest.json")]) == 0

    scenes = [draw_scene(rng) for _ in range(40)]
    data = EvalSet([s[0] for s in scenes], "drawn squares", truths=[s[1] for s in scenes])
    report = compare(tmp_path / "fp32" / "model.fp32.onnx", int8_path, manifest, data, runs=5)
    assert report["metric"] == "box_f1@iou0.5"
    assert report["fp32"]["metric"] == 1.0
    assert report["int8"]["metric"] >= 0.98

    outputs = predict(int8_path, manifest, data.frames[:5])
    for raw, (image, truth) in zip(outputs, scenes[:5], strict=True):
        found = sorted(
            (d.label, tuple(round(v, 3) for v in d.bbox)) for d in detections([raw], manifest, [image])[0]
        )
        expected = sorted((t.label, tuple(round(v, 3) for v in t.bbox)) for t in truth)
        assert found == expected

    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(out / "manifest.json"),
                "--fp32",
                str(tmp_path / "fp32" / "model.fp32.onnx"),
                "--data",
                str(calib),
                "--count",
                "10",
                "--runs",
                "5",
                "--json",
                str(report_path),
            ]
        )
        == 0
    )
    agreement = json.loads(report_path.read_text())
    assert agreement["metric"] == "agreement_with_fp32" and agreement["int8"]["metric"] >= 0.95
    assert agreement["agreement"]["value"] >= 0.95 and set(agreement["agreement"]["per_class"]) <= {
        "red",
        "blue",
    }
    for mode in ("exact", "fast"):  # both int8 modes timed, each against fp32 in the same run
        lat = agreement["latency_by_mode"][mode]
        assert lat["fp32"]["p50_ms"] > 0 and lat["int8"]["p50_ms"] > 0
    rec = agreement["recommendation"]
    assert rec["choice"] in ("fp32", "int8") and rec["mode_on_this_cpu"] in ("exact", "fast")
    slower = agreement["latency_by_mode"][rec["mode_on_this_cpu"]]["int8_vs_fp32"] > 1.0
    assert (rec["choice"] == "fp32") == slower and ("run fp32 here" in rec["text"]) == slower
    assert report_path.with_suffix(".png").stat().st_size > 1000


def test_quantize_third_party_yolo_v8(tmp_path: Path) -> None:
    from tests.models.toy_models import build_yolo_v8, yolo_manifest

    (tmp_path / "fp32").mkdir()
    build_yolo_v8(tmp_path / "fp32" / "model.fp32.onnx")
    (tmp_path / "fp32" / "manifest.json").write_text(json.dumps(yolo_manifest()))
    assert main(["check-manifest", str(tmp_path / "fp32" / "manifest.json")]) == 0
    rng = np.random.default_rng(1)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(16):
        cv2.imwrite(str(calib / f"{i:03d}.jpg"), draw_scene(rng)[0])
    assert (
        main(
            [
                "quantize",
                "--manifest",
                str(tmp_path / "fp32" / "manifest.json"),
                "--calib",
                str(calib),
                "--count",
                "16",
                "--out",
                str(tmp_path / "int8"),
            ]
        )
        == 0
    )
    manifest, int8_path = load_manifest(tmp_path / "int8")
    scenes = [draw_scene(rng) for _ in range(30)]
    data = EvalSet([s[0] for s in scenes], "drawn squares", truths=[s[1] for s in scenes])
    report = compare(tmp_path / "fp32" / "model.fp32.onnx", int8_path, manifest, data, runs=5)
    assert report["fp32"]["metric"] == 1.0 and report["int8"]["metric"] >= 0.98


def int8_weights(path: Path) -> list[np.ndarray]:
    """The int8 weight tensors of a QDQ model (the inputs of its DequantizeLinear nodes)."""
    model = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    return [
        inits[n.input[0]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].dtype == np.int8
    ]


def test_reduce_range_keeps_weights_in_seven_bits_and_runs_alike_on_every_kernel(tmp_path: Path) -> None:
    """--reduce-range: weights within ±64, recorded in the manifest; the fast u8 x s8 kernels of x86 CPUs
    without VNNI cannot saturate on them, so both of onnxruntime's x64 precision modes agree exactly."""
    import onnxruntime as ort

    manifest_path = write_fp32_bundle(tmp_path / "fp32")
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(2)
    for i in range(16):
        cv2.imwrite(str(calib / f"{i:03d}.png"), draw_scene(rng)[0])
    common = ["quantize", "--manifest", str(manifest_path), "--calib", str(calib), "--count", "16"]
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    assert main([*common, "--out", str(tmp_path / "seven"), "--reduce-range"]) == 0

    full, full_path = load_manifest(tmp_path / "full")
    seven, seven_path = load_manifest(tmp_path / "seven")
    assert full.quantization["reduce_range"] is False and seven.quantization["reduce_range"] is True
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in int8_weights(full_path)) == 127
    reduced = int8_weights(seven_path)
    # symmetric 7-bit: |w| <= 64, so two u8 x s8 products sum to at most 2 x 255 x 64 = 32,640 < 2^15
    assert reduced and all(int(np.abs(w.astype(np.int16)).max()) <= 64 for w in reduced)

    def outputs(precise: str) -> list[np.ndarray]:
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.x64quantprecision", precise)
        sess = ort.InferenceSession(str(seven_path), opts, providers=["CPUExecutionProvider"])
        frames = [draw_scene(np.random.default_rng(k))[0] for k in range(8)]
        return [o for f in frames for o in sess.run(None, {"input": prepare(f, seven.input)})]

    for fast, exact in zip(outputs("0"), outputs("1"), strict=True):
        np.testing.assert_array_equal(fast, exact)

    scenes = [draw_scene(rng) for _ in range(30)]
    data = EvalSet([s[0] for s in scenes], "drawn squares", truths=[s[1] for s in scenes])
    report = compare(tmp_path / "fp32" / "model.fp32.onnx", seven_path, seven, data, runs=5)
    assert report["int8"]["metric"] >= 0.98


def test_the_recommendation_says_fp32_where_int8_is_slower() -> None:
    from firmware_models.byom import recommend

    sizes = {"fp32": 1000, "int8": 330}
    slow = {mode: {"int8_vs_fp32": 1.3} for mode in ("exact", "fast")}
    fast = {mode: {"int8_vs_fp32": 0.6} for mode in ("exact", "fast")}
    assert recommend(slow, sizes, 0.99)["choice"] == "fp32"
    assert "register the fp32 variant" in recommend(slow, sizes, 0.99)["text"]
    assert (
        recommend(fast, sizes, 0.99)["choice"] == "int8"
        and "0.33x the size" in recommend(fast, sizes, None)["text"]
    )
