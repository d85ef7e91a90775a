"""The exporter and the C int8 library on the host: unit tests, and bit-exactness against onnxruntime."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from firmware_models.cli import main as toolchain
from firmware_models.export_c import ExportError, input_lut, mantissa_shift, parse
from firmware_models.mcu_board import build
from firmware_models.mcu_board.host_runner import decode_raw, run_frames
from firmware_models.mcu_board.reference import OrtReference, compare_detections

REFERENCE = build.REPO / "firmware_models" / "reference"


def test_c_library_unit_tests(host_build) -> None:
    proc = subprocess.run([str(build.LIB_TESTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    passed, failed = proc.stdout.strip().splitlines()[-1].replace(",", "").split()[::2]
    assert int(failed) == 0 and int(passed) >= 40, proc.stdout


def test_export_c_writes_the_layer_list(tmp_path: Path) -> None:
    assert toolchain(["export-c", "--model", str(build.DEFAULT_MODEL), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "es_model_data.h").read_text()
    convs = [n for n in onnx.load(str(build.DEFAULT_MODEL / "model.onnx")).graph.node if n.op_type == "Conv"]
    assert f"#define ES_N_LAYERS {len(convs)}" in text
    assert text.count("{ES_OP_CONV,") == len(convs)
    assert '#define ES_MODEL_NAME "fomo-street"' in text


def test_exported_numbers_are_the_models() -> None:
    qm = parse(build.DEFAULT_MODEL)
    model = onnx.load(str(build.DEFAULT_MODEL / "model.onnx"))
    init = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    first = qm.layers[0]
    assert first.weights is not None and first.multiplier is not None
    assert np.array_equal(first.weights, init["trunk.0.weight_quantized"])
    assert first.bias is not None and np.array_equal(first.bias, init["trunk.0.bias_quantized"])
    for layer in qm.layers:
        assert layer.multiplier is not None
        for m in layer.multiplier:  # the mantissa/shift pair is exactly the float32 multiplier
            mant, shift = mantissa_shift(float(m))
            assert mant < 2**24 and np.float32(np.ldexp(float(mant), -shift)) == m
    assert qm.out_shape == (5, 24, 40) and qm.layers[-1].out_zp == 135
    assert qm.connectivity[qm.labels.index("person")] == 4 and qm.merge_gap[qm.labels.index("truck")] == (
        4,
        1,
    )
    assert np.array_equal(input_lut(qm), np.arange(256))  # scale 1/255 in, 1/255 quantizer: pixels as is


def test_export_refuses_what_the_library_cannot_run() -> None:
    with pytest.raises(ExportError):
        parse(REFERENCE / "crop-classifier")


def test_bit_exact_on_every_golden_input(host_build, reference: OrtReference, golden_pixels) -> None:
    board = run_frames(golden_pixels)
    for pixels, (raw, dets) in zip(golden_pixels, board, strict=True):
        want_raw, want_dets = reference.run(pixels)
        assert raw is not None and np.array_equal(raw, want_raw.reshape(-1))
        assert want_dets, "the golden frame has objects in it"
        assert compare_detections(dets, want_dets) == []


def test_bit_exact_on_a_real_clip(host_build, reference: OrtReference, clip_pixels) -> None:
    board = run_frames(clip_pixels)
    found = 0
    for pixels, (raw, dets) in zip(clip_pixels, board, strict=True):
        want_raw, want_dets = reference.run(pixels)
        assert raw is not None and np.array_equal(raw, want_raw.reshape(-1))
        assert compare_detections(dets, want_dets) == []
        found += len(dets)
    assert found > 0, "the real clip has a car, a cyclist and a pedestrian"


def test_c_decoder_agrees_with_reference_decoder(host_build, reference: OrtReference) -> None:
    """Random head tensors, dense with objects, through the C decoder and through onnxruntime's float
    tail + the toolchain's decoder (4-connected people, truck gap closing, ties, thresholds)."""
    rng = np.random.default_rng(27)
    raws = []
    for _ in range(60):
        cls = rng.choice(5, size=(24, 40), p=[0.5, 0.2, 0.1, 0.1, 0.1])
        grid = rng.integers(0, 150, size=(5, 24, 40))
        np.put_along_axis(grid, cls[None], rng.integers(150, 256, size=(1, 24, 40)), 0)
        # space-to-depth (CRD): raw[c*4 + (y%2)*2 + x%2, y//2, x//2] = grid[c, y, x]
        raw = grid.reshape(5, 12, 2, 20, 2).transpose(0, 2, 4, 1, 3).reshape(20, 12, 20)
        raws.append(raw.astype(np.uint8))
    boards = decode_raw(raws)
    total = 0
    for raw, dets in zip(raws, boards, strict=True):
        assert compare_detections(dets, reference.decode_raw(raw)) == []
        total += len(dets)
    assert total > 60 * 10
