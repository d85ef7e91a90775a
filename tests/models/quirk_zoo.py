"""Small detectors built with ``onnx.helper`` that carry real exporters' quirks, one or several at a time.

The net: conv 3→8 (3x3) + ReLU, then two 1x1 heads over a 4x4 grid of a 16x16 input: ``boxes``
[1, 16, 4] (sigmoid) and ``scores`` [1, 16, 3] (softmax) — an SSD-style pair. Weights are random but
seeded; these nets test the toolchain's handling of graphs, not accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE, CELLS = 16, 16


@dataclass(frozen=True)
class Quirks:
    unnamed: bool = False
    initializers_as_inputs: bool = False
    opset: int = 17
    scores_first: bool = False
    nhwc: bool = False
    dynamic_batch: bool = False
    einsum: bool = False  # heads as Einsum: an op onnxruntime's quantizer does not quantize


def build(path: Path, q: Quirks) -> Path:
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    wb = rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32)
    ws = rng.normal(0, 0.3, (3, 8, 1, 1)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(np.zeros(8, np.float32), "b1"),
        numpy_helper.from_array(wb if not q.einsum else wb[:, :, 0, 0], "wb"),
        numpy_helper.from_array(ws if not q.einsum else ws[:, :, 0, 0], "ws"),
        numpy_helper.from_array(np.array([1, 4, CELLS], np.int64), "shape_b"),
        numpy_helper.from_array(np.array([1, 3, CELLS], np.int64), "shape_s"),
    ]
    nodes = []
    x = "input"
    if q.nhwc:
        nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"))
        x = "nchw"
    nodes.append(
        helper.make_node("Conv", [x, "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[4, 4], name="c1")
    )
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="r1"))
    if q.einsum:
        nodes.append(helper.make_node("Einsum", ["r1", "wb"], ["hb"], equation="bchw,oc->bohw", name="hb"))
        nodes.append(helper.make_node("Einsum", ["r1", "ws"], ["hs"], equation="bchw,oc->bohw", name="hs"))
    else:
        nodes.append(helper.make_node("Conv", ["r1", "wb"], ["hb"], name="hb"))
        nodes.append(helper.make_node("Conv", ["r1", "ws"], ["hs"], name="hs"))
    nodes += [
        helper.make_node("Reshape", ["hb", "shape_b"], ["fb"], name="fb"),
        helper.make_node("Transpose", ["fb"], ["tb"], perm=[0, 2, 1], name="tb"),
        helper.make_node("Sigmoid", ["tb"], ["boxes"], name="sb"),
        helper.make_node("Reshape", ["hs", "shape_s"], ["fs"], name="fs"),
        helper.make_node("Transpose", ["fs"], ["ts"], perm=[0, 2, 1], name="ts"),
        helper.make_node("Softmax", ["ts"], ["scores"], axis=2, name="softmax"),
    ]
    if q.unnamed:
        for node in nodes:
            node.name = ""
    batch: int | str = "N" if q.dynamic_batch else 1
    shape = [batch, SIZE, SIZE, 3] if q.nhwc else [batch, 3, SIZE, SIZE]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)]
    if q.initializers_as_inputs:
        inputs += [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in inits]
    outs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, CELLS, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, CELLS, 3]),
    ]
    if q.scores_first:
        outs.reverse()
    graph = helper.make_graph(nodes, "quirky", inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", q.opset)])
    model.ir_version = 7 if q.opset < 15 else 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
