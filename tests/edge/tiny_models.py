"""Tiny hand-built ONNX models with known, meaningful outputs (no trained weights, no randomness).

- ``red_fomo``: a FOMO-style heat map of "redness" (R - (G+B)/2, pooled over 8x8 cells): a red square
  in the frame becomes one detection at the square's centre.
- ``colour_classifier``: mean R, G, B of the input as logits: a frame's dominant colour wins.
- ``constant_outputs``: a graph that returns fixed SSD/YOLO-shaped tensors, to test output plumbing.
Optionally quantized to int8 QDQ with onnxruntime's own quantizer, like the real reference models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shared.manifest import sha256_file

OPSET = [helper.make_opsetid("", 17)]


def _write(model: onnx.ModelProto, directory: Path, manifest: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    path = directory / "model.onnx"
    onnx.save(model, str(path))
    manifest = {
        **manifest,
        "file": "model.onnx",
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def red_fomo(directory: Path, size: int = 64) -> Path:
    cells = size // 8
    weights = numpy_helper.from_array(np.array([1.0, -0.5, -0.5], np.float32).reshape(1, 3, 1, 1), "w")
    gain = numpy_helper.from_array(np.array(4.0, np.float32), "gain")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["red"]),
        helper.make_node("AveragePool", ["red"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Mul", ["pooled", "gain"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "zero", "one"], ["fg"]),
        helper.make_node("Sub", ["one", "fg"], ["bg"]),
        helper.make_node("Concat", ["bg", "fg"], ["heatmap"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "red_fomo",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 2, cells, cells])],
        [weights, gain, one, zero],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="edgesight-tests")
    manifest = {
        "name": "red-fomo",
        "version": "1.0.0",
        "task": "detection",
        "precision": "fp32",
        "input": {
            "name": "image",
            "shape": [1, 3, size, size],
            "layout": "NCHW",
            "color": "RGB",
            "resize": "stretch",
            "scale": 1 / 255,
        },
        "outputs": [{"name": "heatmap", "shape": [1, 2, cells, cells]}],
        "decoder": {"type": "fomo", "score_threshold": 0.5, "background_index": 0},
        "labels": ["background", "red_thing"],
    }
    return _write(model, directory, manifest)


def colour_classifier(directory: Path, size: int = 32) -> Path:
    gain = numpy_helper.from_array(np.array(10.0, np.float32), "gain")
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["mean"]),
        helper.make_node("Reshape", ["mean", "shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "gain"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "colour_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [gain, shape],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="edgesight-tests")
    manifest = {
        "name": "colour-classifier",
        "version": "1.0.0",
        "task": "classification",
        "precision": "fp32",
        "input": {"name": "image", "shape": [1, 3, size, size], "color": "RGB", "scale": 1 / 255},
        "outputs": [{"name": "logits", "shape": [1, 3]}],
        "decoder": {"type": "classifier", "score_threshold": 0.5, "apply_softmax": True},
        "labels": ["red", "green", "blue"],
    }
    return _write(model, directory, manifest)


def constant_outputs(
    directory: Path, outputs: dict[str, np.ndarray], decoder: dict, labels: list[str], size: int = 64
) -> Path:
    """Outputs = the given constants (plus 0 x mean(input), so the graph really consumes its input)."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "constant_outputs",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        outs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="edgesight-tests")
    manifest = {
        "name": "constant",
        "version": "1.0.0",
        "task": "detection",
        "precision": "fp32",
        "input": {"name": "image", "shape": [1, 3, size, size], "color": "RGB", "resize": "letterbox"},
        "outputs": [{"name": n} for n in outputs],
        "decoder": decoder,
        "labels": labels,
    }
    return _write(model, directory, manifest)


def red_square_video(
    path: Path, frames: int = 60, fps: float = 20.0, size: tuple[int, int] = (160, 96)
) -> Path:
    """A grey scene where one red square crosses from left to right, then the scene is empty again."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    side = 20
    for i in range(frames):
        img = np.full((h, w, 3), 120, np.uint8)
        x = int(-side + (w + 2 * side) * i / (frames * 0.7))
        if x < w:
            cv2.rectangle(img, (x, h // 2 - side // 2), (x + side, h // 2 + side // 2), (0, 0, 230), -1)
        writer.write(img)
    writer.release()
    return path
