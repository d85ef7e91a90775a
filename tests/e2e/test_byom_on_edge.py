"""Issue 3 acceptance, edge side: a third-party fp32 model built in the test (SSD-style and YOLOv8-style,
hand-designed weights), quantized to int8 by the project's tool, loads in the edge agent's runtime
through its manifest and finds exactly the objects drawn for it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware_models.cli import main as toolchain
from model_runtime import ModelRuntime
from tests.models.toy_models import (
    build_ssd,
    build_yolo_v8,
    draw_scene,
    ssd_manifest,
    yolo_manifest,
)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(("build", "manifest"), [(build_ssd, ssd_manifest), (build_yolo_v8, yolo_manifest)])
def test_quantized_third_party_detector_runs_in_the_edge_runtime(tmp_path: Path, build, manifest) -> None:
    fp32 = tmp_path / "fp32"
    fp32.mkdir()
    build(fp32 / "model.fp32.onnx")
    (fp32 / "manifest.json").write_text(json.dumps(manifest()))
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(7)
    for i in range(16):
        cv2.imwrite(str(calib / f"{i:03d}.png"), draw_scene(rng)[0])
    out = tmp_path / "int8"
    args = ["quantize", "--manifest", str(fp32 / "manifest.json"), "--calib", str(calib), "--out", str(out)]
    assert toolchain([*args, "--count", "16"]) == 0

    runtime = ModelRuntime(out)  # the agent's loader: manifest, sha256, session, decoder by type
    assert runtime.manifest.precision == "int8"
    for _ in range(20):
        image, truth = draw_scene(rng)
        found = runtime.detect(image)
        assert sorted(d.label for d in found) == sorted(t.label for t in truth)
        for t in truth:
            best = max((iou(d.box, t.bbox) for d in found if d.label == t.label), default=0.0)
            assert best >= 0.9, (t, found)
