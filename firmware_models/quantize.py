"""Static int8 quantization with onnxruntime: QDQ format, per-channel weights, after ``quant_pre_process``
— and checked, so it never hands back a float model called int8.

Nodes stay in float by *op type* (``Softmax``: probabilities would lose resolution near 0 and 1) or by
a name pattern, never by an empty name. The result must hold quantized weights, pass the ONNX checker,
and load in onnxruntime; anything else is a ``QuantizeFailed`` naming the problem.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from model_runtime.preprocessing import prepare
from model_runtime.session import SessionSettings, open_session
from shared.manifest import ModelManifest

from .importer import MIN_OPSET, name_nodes, opset_of, strip_initializer_inputs
from .onnx_meta import get_props, set_props

FLOAT_OPS = ("Softmax",)
# Ops with weights: where the int8 speed is. The output tail after the last of them (activations,
# reshapes, concatenations of box offsets with 0–1 scores) gains nothing from int8 and loses much: one
# uint8 scale over YOLOX's concatenated [offsets, log sizes, scores] leaves scores ~4 levels.
# Percentile: activation ranges from the 99.99th percentile, not the one brightest pixel of the set.
CALIBRATION_OPTIONS: dict[str, dict[str, Any]] = {"Percentile": {"CalibPercentile": 99.99}}
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


class QuantizeFailed(ValueError):
    """The model could not be quantized into something trustworthy; the message says why."""


class ArrayReader(CalibrationDataReader):
    """Feeds prepared inputs one at a time, with a progress bar."""

    def __init__(self, input_name: str, batches: list[np.ndarray], progress: bool = True) -> None:
        self.input_name = input_name
        self.batches = batches
        self.bar = tqdm(total=len(batches), desc="calibrate", unit="frame", disable=not progress, leave=False)
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.batches):
            self.bar.close()
            return None
        batch = self.batches[self.index]
        self.index += 1
        self.bar.update(1)
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.index = 0


def float_nodes(model: onnx.ModelProto, ops: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Names of the nodes to keep in float: by op type or a name pattern (regular expression)."""
    chosen = [
        n
        for n in model.graph.node
        if n.op_type in ops or any(re.search(p, n.name) for p in patterns if n.name)
    ]
    unnamed = [n.op_type for n in chosen if not n.name]
    if unnamed:
        raise QuantizeFailed(
            f"{len(unnamed)} node(s) to keep in float ({sorted(set(unnamed))}) have no name, so they "
            "cannot be excluded: run `python -m firmware_models import` on the model first "
            "(it names every node)"
        )
    return [n.name for n in chosen]


def output_tail(model: onnx.ModelProto, heads: bool = False) -> list[onnx.NodeProto]:
    """Nodes between the last weight ops and the graph outputs (walking back from every output); with
    ``heads`` also those last weight ops (the prediction convs)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    tail: dict[int, onnx.NodeProto] = {}
    todo = [o.name for o in model.graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or id(node) in tail:
            continue
        if node.op_type in WEIGHT_OPS:
            if heads:
                tail[id(node)] = node
            continue
        tail[id(node)] = node
        todo.extend(node.input)
    return list(tail.values())


def leading_nodes(model: onnx.ModelProto, weight_ops: int) -> list[onnx.NodeProto]:
    """The nodes before the ``weight_ops``-th weight op (graph order is topological): the first layers,
    whose wide activation ranges (raw 0–255 pixels, the stem) int8 resolves worst."""
    if weight_ops <= 0:
        return []
    seen = 0
    for i, node in enumerate(model.graph.node):
        if node.op_type in WEIGHT_OPS:
            if seen == weight_ops:
                return list(model.graph.node[:i])
            seen += 1
    return list(model.graph.node)


def quantized_weights(model: onnx.ModelProto) -> int:
    """Initializers stored as 8-bit integers that a DequantizeLinear turns back into weights."""
    inits = {i.name: i for i in model.graph.initializer}
    eight_bit = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    return sum(
        1
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in inits
        and inits[n.input[0]].data_type in eight_bit
    )


def verify(path: Path) -> dict[str, int]:
    """QuantizeFailed unless ``path`` is a valid model onnxruntime loads, with quantized weights."""
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise QuantizeFailed(f"the quantized model is not valid ONNX: {exc}") from None
    try:
        open_session(path, SessionSettings())
    except Exception as exc:  # onnxruntime's own error types
        raise QuantizeFailed(f"onnxruntime cannot load the quantized model: {exc}") from None
    ops = [n.op_type for n in model.graph.node]
    weights = quantized_weights(model)
    if not weights or "QuantizeLinear" not in ops:
        raise QuantizeFailed(
            f"nothing was quantized ({ops.count('QuantizeLinear')} QuantizeLinear nodes, "
            f"{weights} int8 weights): the result would be a float model called int8"
        )
    return {"quantize_nodes": ops.count("QuantizeLinear"), "int8_weights": weights}


def quantize_model(
    fp32_path: str | Path,
    int8_path: str | Path,
    manifest: ModelManifest,
    frames: list[np.ndarray],
    progress: bool = True,
    calibration_source: str = "rendered",
    reduce_range: bool = False,
    exclude_ops: Sequence[str] = FLOAT_OPS,
    exclude_nodes: Sequence[str] = (),
    float_tail: bool = False,
    calibrate_method: str = "MinMax",
    float_heads: bool = False,
    float_first: int = 0,
) -> dict[str, Any]:
    """Quantize ``fp32_path`` to ``int8_path``; returns the facts for ``manifest.quantization``.

    ``reduce_range`` stores weights in 7 bits (within ±64): then x86 CPUs without VNNI can run the fast
    u8 x s8 kernels without saturating, so they need not fall back to the slower exact path that
    ``shared.int8_precision.ort_session_config()`` asks for there (fomo-street on an AVX2-only EPYC:
    1.40 → 1.05 ms, centroid F1 0.938 → 0.936). VNNI and ARM CPUs gain nothing from it.
    ``float_tail`` keeps the output tail after the last weight op in float (``output_tail``),
    ``float_first`` the first that many weight ops and everything before them (``leading_nodes``).
    """
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise QuantizeFailed("no calibration frames")
    model = onnx.load(str(fp32_path))
    opset = opset_of(model)
    if opset < MIN_OPSET:
        raise QuantizeFailed(
            f"opset {opset} < {MIN_OPSET}: per-channel int8 weights need DequantizeLinear's axis (opset 13); "
            "run `python -m firmware_models import` first (it converts the opset and checks the outputs)"
        )
    props = get_props(model)
    stripped = strip_initializer_inputs(model)
    named = name_nodes(model)  # exclusions and reports need names; names change no output
    batches = [prepare(frame, manifest.input) for frame in frames]
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "clean.onnx"
        pre = Path(tmp) / "pre.onnx"
        onnx.save(model, str(clean))
        quant_pre_process(str(clean), str(pre), skip_symbolic_shape=True)
        pre_model = onnx.load(str(pre))
        kept = float_nodes(pre_model, exclude_ops, exclude_nodes)
        if float_tail:
            tail = [n.name for n in output_tail(pre_model, float_heads) if n.name not in kept]
            if any(not name for name in tail):
                raise QuantizeFailed(
                    "the output tail has unnamed nodes: run `python -m firmware_models import`"
                )
            kept += tail
        kept += [n.name for n in leading_nodes(pre_model, float_first) if n.name and n.name not in kept]
        try:
            quantize_static(
                str(pre),
                str(int8_path),
                ArrayReader(manifest.input.name, batches, progress),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod[calibrate_method],
                extra_options=CALIBRATION_OPTIONS.get(calibrate_method, {}),
                nodes_to_exclude=kept,
                reduce_range=reduce_range,
            )
        except Exception as exc:  # the quantizer's own errors (an op it cannot handle, a bad graph)
            raise QuantizeFailed(f"onnxruntime's quantizer failed: {type(exc).__name__}: {exc}") from None
    int8 = onnx.load(str(int8_path))
    set_props(int8, {**props, "edgesight.precision": "int8"})
    onnx.save(int8, str(int8_path))
    counts = verify(int8_path)
    return {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "per_channel": True,
        "activation_type": "uint8",
        "weight_type": "int8",
        "reduce_range": reduce_range,
        "calibrate_method": calibrate_method,
        "pre_process": "onnxruntime.quantization.shape_inference.quant_pre_process",
        "calibration_source": calibration_source,
        "calibration_frames": len(batches),
        "float_ops": list(exclude_ops),
        "float_node_patterns": list(exclude_nodes),
        "float_tail": float_tail,
        "float_heads": float_heads,
        "float_first_weight_ops": float_first,
        "float_nodes": kept,
        "stripped_initializer_inputs": stripped,
        "named_nodes": named,
        **counts,
    }
