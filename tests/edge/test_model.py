"""Model runtime and decoders, on tiny real ONNX graphs with known outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_runtime import ModelLoadError, ModelRuntime, preprocess
from model_runtime.decoders import DecoderError
from model_runtime.decoders.yolo import decode_yolo
from shared.manifest import InputSpec, parse_manifest
from tests.edge.tiny_models import colour_classifier, constant_outputs

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm


def scene_with_red_square(x: int, y: int, side: int = 24, size=(192, 108)) -> np.ndarray:
    img = np.full((size[1], size[0], 3), 110, np.uint8)
    cv2.rectangle(img, (x, y), (x + side, y + side), (20, 20, 235), -1)
    return img


def test_fomo_finds_the_red_square_where_it_is(red_model: Path):
    runtime = ModelRuntime(red_model)
    assert runtime.detect(np.full((108, 192, 3), 110, np.uint8)) == []
    for x, y in [(10, 10), (150, 70), (80, 40)]:
        found = runtime.detect(scene_with_red_square(x, y))
        assert len(found) == 1 and found[0].label == "red_thing"
        x1, y1, x2, y2 = found[0].box
        cx, cy = (x1 + x2) / 2 * 192, (y1 + y2) / 2 * 108
        assert abs(cx - (x + 12)) < 12 and abs(cy - (y + 12)) < 12  # within one FOMO cell


def test_fomo_separates_two_objects(red_model: Path):
    img = scene_with_red_square(10, 10)
    cv2.rectangle(img, (150, 70), (174, 94), (20, 20, 235), -1)
    assert len(ModelRuntime(red_model).detect(img)) == 2


def test_classifier_picks_dominant_colour(tmp_path: Path):
    runtime = ModelRuntime(colour_classifier(tmp_path / "cc"))
    for channel, label in [(2, "red"), (1, "green"), (0, "blue")]:  # BGR frames
        img = np.zeros((40, 60, 3), np.uint8)
        img[:, :, channel] = 220
        found = runtime.detect(img)
        assert [d.label for d in found] == [label] and found[0].score > 0.9


def test_ssd_decoder_through_a_real_session(tmp_path: Path):
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.11, 0.1, 0.31, 0.3], [0.6, 0.5, 0.9, 0.9]]], np.float32)
    scores = np.array([[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.05, 0.05, 0.9]]], np.float32)
    model = constant_outputs(
        tmp_path / "ssd",
        {"boxes": boxes, "scores": scores},
        {"type": "ssd", "score_threshold": 0.5, "iou_threshold": 0.5, "background_index": 0},
        ["background", "person", "car"],
    )
    found = ModelRuntime(model).detect(np.zeros((64, 64, 3), np.uint8))  # square frame: no letterbox offset
    assert [d.label for d in found] == ["person", "car"]  # the overlapping person box was suppressed
    assert np.allclose(found[0].box, (0.1, 0.1, 0.3, 0.3), atol=1e-3)


def test_yolo_v8_letterbox_maps_back_to_the_frame(tmp_path: Path):
    # 64x64 input; frame 128x64 → letterbox scale 0.5, 16 px padding top and bottom.
    rows = np.zeros((1, 6, 3), np.float32)
    rows[0, :, 0] = [32, 32, 16, 16, 0.9, 0.1]  # cx, cy, w, h, person, car: centre of the image
    rows[0, :, 1] = [33, 32, 16, 16, 0.8, 0.1]  # duplicate → NMS
    rows[0, :, 2] = [10, 30, 4, 4, 0.1, 0.2]  # below threshold
    model = constant_outputs(
        tmp_path / "yolo",
        {"out": rows},
        {"type": "yolo", "score_threshold": 0.5, "params": {"version": 8}},
        ["person", "car"],
    )
    found = ModelRuntime(model).detect(np.zeros((64, 128, 3), np.uint8))
    assert len(found) == 1 and found[0].label == "person"
    assert np.allclose(found[0].box, (0.375, 0.25, 0.625, 0.75), atol=1e-3)


def test_yolo_v5_rows_and_shape_errors():
    manifest = parse_manifest(
        {
            "name": "y5",
            "version": "1.0.0",
            "task": "detection",
            "input": {"name": "x", "shape": [1, 3, 64, 64]},
            "outputs": [{"name": "o"}],
            "decoder": {"type": "yolo", "score_threshold": 0.5, "params": {"version": "v5"}},
            "labels": ["a", "b"],
        }
    )
    rows = np.array([[[20, 20, 10, 10, 0.9, 0.1, 0.95], [20, 20, 10, 10, 0.3, 0.9, 0.1]]], np.float32)
    found = decode_yolo({"o": rows}, manifest)
    assert len(found) == 1 and found[0].label == "b" and found[0].score == pytest.approx(0.855)
    with pytest.raises(DecoderError, match="yolo 5 expects"):
        decode_yolo({"o": np.zeros((1, 3, 6), np.float32)}, manifest)


def test_preprocess_layout_colour_and_normalisation():
    spec = InputSpec(
        name="x", shape=(1, 2, 2, 3), layout="NHWC", color="RGB", scale=1.0, mean=(10, 20, 30), std=(2, 2, 2)
    )
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, :] = (30, 20, 10)  # BGR
    tensor, _ = preprocess(img, spec)
    assert tensor.shape == (1, 2, 2, 3) and tensor.dtype == np.float32
    assert np.allclose(tensor[0, 0, 0], [0.0, 0.0, 0.0])  # RGB (10,20,30) minus mean, / std


def test_corrupt_model_is_refused(tmp_path: Path, red_model: Path):
    broken = tmp_path / "broken"
    shutil.copytree(red_model, broken)
    data = bytearray((broken / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256 .* does not match manifest"):
        ModelRuntime(broken)


def test_garbage_model_with_matching_hash_is_refused_by_onnxruntime(tmp_path: Path, red_model: Path):
    from shared.manifest import sha256_file

    broken = tmp_path / "garbage"
    shutil.copytree(red_model, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest.update(sha256=sha256_file(broken / "model.onnx"), size_bytes=17)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        ModelRuntime(broken)


def test_preprocess_fast_path_matches_the_manifest_formula():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    for color in ("RGB", "BGR"):
        spec = InputSpec(
            name="x",
            shape=(1, 3, 96, 160),
            color=color,
            scale=1 / 255,
            mean=(0.485, 0.456, 0.406),
            std=(0.5, 0.5, 0.5),
        )
        tensor, _ = preprocess(img, spec)
        source = img[..., ::-1] if color == "RGB" else img
        expected = ((source / 255.0 - np.array(spec.mean)) / 0.5).transpose(2, 0, 1)[None]
        assert tensor.shape == (1, 3, 96, 160) and np.allclose(tensor, expected, atol=1e-5)


def test_missing_execution_providers_fall_back_to_cpu(red_model: Path, caplog):
    from edge_agent.config import RuntimeConfig
    from model_runtime.session import choose_providers

    assert choose_providers(["NoSuchExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert "not available here" in caplog.text
    runtime = ModelRuntime(
        red_model, RuntimeConfig(providers=["XNNPACKExecutionProvider"], intra_op_threads=1)
    )
    assert runtime.session.get_providers()[-1] == "CPUExecutionProvider"
    assert runtime.detect(scene_with_red_square(40, 40))  # and it still detects


def split_truck_and_two_people() -> np.ndarray:
    """A [1, 3, 8, 16] FOMO map: one truck lit as two blobs 3 cells apart, two people 3 cells apart."""
    heat = np.zeros((1, 3, 8, 16), np.float32)
    heat[0, 0] = 1.0
    for cls, row, cols in [(2, 2, (2, 3, 7, 8)), (1, 6, (2, 6))]:
        for col in cols:
            heat[0, :, row, col] = 0.0
            heat[0, cls, row, col] = 0.9
    return heat


def test_fomo_merge_gap_joins_a_long_object_lit_twice_and_no_other_label(tmp_path: Path):
    decoder = {"type": "fomo", "score_threshold": 0.5, "background_index": 0, "params": {"refine": False}}
    labels = ["background", "person", "truck"]
    heat = split_truck_and_two_people()
    plain = ModelRuntime(constant_outputs(tmp_path / "plain", {"probs": heat}, decoder, labels))
    assert (
        sorted(d.label for d in plain.detect(np.zeros((64, 64, 3), np.uint8)))
        == ["person"] * 2 + ["truck"] * 2
    )
    merging = {**decoder, "params": {"refine": False, "merge_gap": {"truck": [2, 0]}}}
    runtime = ModelRuntime(constant_outputs(tmp_path / "merge", {"probs": heat}, merging, labels))
    found = runtime.detect(np.zeros((64, 64, 3), np.uint8))
    assert sorted(d.label for d in found) == ["person", "person", "truck"]
    truck = next(d for d in found if d.label == "truck")
    # One object centred between the blobs' cells (columns 2..8 of 16), not on either blob.
    assert abs((truck.box[0] + truck.box[2]) / 2 - 5.5 / 16) < 0.01


def test_fomo_merge_gap_too_small_for_the_gap_changes_nothing(tmp_path: Path):
    decoder = {"type": "fomo", "score_threshold": 0.5, "background_index": 0}
    decoder["params"] = {"merge_gap": {"truck": [1, 1]}}  # bridges 2 empty columns; the gap is 3
    model = constant_outputs(
        tmp_path / "m", {"probs": split_truck_and_two_people()}, decoder, ["b", "p", "truck"]
    )
    assert [d.label for d in ModelRuntime(model).detect(np.zeros((64, 64, 3), np.uint8))].count("truck") == 2
