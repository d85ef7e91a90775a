"""Hand-built fp32 detectors whose weights are *designed*, not random: their outputs are right for the
drawn scenes below (coloured squares on grey), so a quantized copy can be checked for finding them.

SSD-style: 49 anchors (24x24 windows at stride 12 on a 96x96 input). A 1x1 convolution turns RGB into
"redness" (R-G-B) and "blueness" (B-R-G), ReLU keeps the positive part, a 24x24 average pool measures how
much of each anchor window is red or blue, and a steep sigmoid turns "the window is (almost) all red" into
a score near 1. ``boxes`` are the anchors themselves (normalised x1, y1, x2, y2), exact for squares drawn
on the anchor grid. The initializers are also listed as graph inputs, like old exporters did.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from synthetic_world import TruthObject

SIZE, WINDOW, STRIDE = 96, 24, 12
GRID = (SIZE - WINDOW) // STRIDE + 1  # 7
LABELS = ("background", "red", "blue")
COLOURS_BGR = {"red": (0, 0, 230), "blue": (230, 0, 0)}


def anchors() -> np.ndarray:
    boxes = [
        (x * STRIDE, y * STRIDE, x * STRIDE + WINDOW, y * STRIDE + WINDOW)
        for y in range(GRID)
        for x in range(GRID)
    ]
    return (np.asarray(boxes, np.float32) / SIZE)[None]


def build_ssd(path: Path) -> Path:
    k = GRID * GRID
    inits = [
        numpy_helper.from_array(
            np.array([[1, -1, -1], [-1, -1, 1]], np.float32).reshape(2, 3, 1, 1), "colour_w"
        ),
        numpy_helper.from_array(np.zeros(2, np.float32), "colour_b"),
        numpy_helper.from_array(np.array([1, 2, k], np.int64), "shape_2k"),
        numpy_helper.from_array(np.array(40.0, np.float32), "gain"),
        numpy_helper.from_array(np.array(-0.8, np.float32), "offset"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(anchors(), "anchors"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "colour_w", "colour_b"], ["colour"], name="colour"),
        helper.make_node("Relu", ["colour"], ["colour_pos"]),
        helper.make_node(
            "AveragePool",
            ["colour_pos"],
            ["cover"],
            kernel_shape=[WINDOW, WINDOW],
            strides=[STRIDE, STRIDE],
            name="window",
        ),
        helper.make_node("Reshape", ["cover", "shape_2k"], ["cover_flat"]),
        helper.make_node("Transpose", ["cover_flat"], ["cover_k2"], perm=[0, 2, 1]),
        helper.make_node("Add", ["cover_k2", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["object_scores"]),
        helper.make_node("ReduceMax", ["object_scores"], ["best"], axes=[2], keepdims=1),
        helper.make_node("Sub", ["one", "best"], ["background"]),
        helper.make_node("Concat", ["background", "object_scores"], ["scores"], axis=2),
        helper.make_node("Identity", ["anchors"], ["boxes"]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy-ssd",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])]
        + [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in inits],  # old-style
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, k, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, k, len(LABELS)]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ssd_manifest(model_file: str = "model.fp32.onnx") -> dict:
    k = GRID * GRID
    return {
        "name": "toy-ssd",
        "version": "0.1.0",
        "task": "detection",
        "file": model_file,
        "precision": "fp32",
        "input": {"name": "input", "shape": [1, 3, SIZE, SIZE], "layout": "NCHW", "color": "RGB"},
        "outputs": [{"name": "boxes", "shape": [1, k, 4]}, {"name": "scores", "shape": [1, k, len(LABELS)]}],
        "decoder": {"type": "ssd", "score_threshold": 0.5, "iou_threshold": 0.3, "background_index": 0},
        "labels": list(LABELS),
    }


def draw_scene(rng: np.random.Generator, max_objects: int = 3) -> tuple[np.ndarray, list[TruthObject]]:
    """Grey canvas with up to ``max_objects`` red/blue squares on distinct anchor cells (plus noise)."""
    img = np.full((SIZE, SIZE, 3), 128, np.uint8)
    cells = rng.choice(GRID * GRID, size=int(rng.integers(1, max_objects + 1)), replace=False)
    taken: list[tuple[int, int]] = []
    truth = []
    for tid, cell in enumerate(cells):
        gx, gy = int(cell % GRID), int(cell // GRID)
        if any(abs(gx - a) < 3 and abs(gy - b) < 3 for a, b in taken):
            continue  # keep squares apart so windows never overlap two of them
        taken.append((gx, gy))
        label = str(rng.choice(["red", "blue"]))
        x1, y1 = gx * STRIDE, gy * STRIDE
        cv2.rectangle(img, (x1, y1), (x1 + WINDOW - 1, y1 + WINDOW - 1), COLOURS_BGR[label], -1)
        box = (x1 / SIZE, y1 / SIZE, (x1 + WINDOW) / SIZE, (y1 + WINDOW) / SIZE)
        truth.append(TruthObject(tid, label, box, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), 1.0))
    noise = rng.normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), truth


def write_fp32_bundle(directory: Path) -> Path:
    """fp32 model + its manifest in ``directory``; returns the manifest path."""
    directory.mkdir(parents=True, exist_ok=True)
    build_ssd(directory / "model.fp32.onnx")
    path = directory / "manifest.json"
    path.write_text(json.dumps(ssd_manifest(), indent=2))
    return path


def build_yolo_v8(path: Path) -> Path:
    """The same colour-window detector as a YOLOv8-style head: ``[1, 4+N, K]`` with cx, cy, w, h in input
    pixels and N=2 class scores (no background class, no objectness)."""
    k = GRID * GRID
    xyxy = anchors()[0] * SIZE
    cxcywh = np.stack(
        [
            (xyxy[:, 0] + xyxy[:, 2]) / 2,
            (xyxy[:, 1] + xyxy[:, 3]) / 2,
            xyxy[:, 2] - xyxy[:, 0],
            xyxy[:, 3] - xyxy[:, 1],
        ]
    )[None].astype(np.float32)
    inits = [
        numpy_helper.from_array(
            np.array([[1, -1, -1], [-1, -1, 1]], np.float32).reshape(2, 3, 1, 1), "colour_w"
        ),
        numpy_helper.from_array(np.zeros(2, np.float32), "colour_b"),
        numpy_helper.from_array(np.array([1, 2, k], np.int64), "shape_2k"),
        numpy_helper.from_array(np.array(40.0, np.float32), "gain"),
        numpy_helper.from_array(np.array(-0.8, np.float32), "offset"),
        numpy_helper.from_array(cxcywh, "anchors_cxcywh"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "colour_w", "colour_b"], ["colour"]),
        helper.make_node("Relu", ["colour"], ["colour_pos"]),
        helper.make_node(
            "AveragePool", ["colour_pos"], ["cover"], kernel_shape=[WINDOW, WINDOW], strides=[STRIDE, STRIDE]
        ),
        helper.make_node("Reshape", ["cover", "shape_2k"], ["cover_flat"]),
        helper.make_node("Add", ["cover_flat", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["class_scores"]),
        helper.make_node("Concat", ["anchors_cxcywh", "class_scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "toy-yolo-v8",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def yolo_manifest(model_file: str = "model.fp32.onnx") -> dict:
    return {
        "name": "toy-yolo",
        "version": "0.1.0",
        "task": "detection",
        "file": model_file,
        "precision": "fp32",
        "input": {"name": "images", "shape": [1, 3, SIZE, SIZE]},
        "outputs": [{"name": "output0", "shape": [1, 6, GRID * GRID]}],
        "decoder": {"type": "yolo", "score_threshold": 0.5, "iou_threshold": 0.3, "params": {"version": 8}},
        "labels": ["red", "blue"],
    }
