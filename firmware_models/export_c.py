"""int8 QDQ ONNX model → one C header for the microcontroller library (``firmware_models/mcu/lib``).

Why this shape: the firmware must compute exactly what onnxruntime computes, so the header holds the
numbers onnxruntime's fused ``QLinearConv`` uses, not re-derived ones — int8 weights (OIHW), the int32
biases as quantized, and per output channel the requantization multiplier as a mantissa/shift pair
(``mantissa * 2^-shift``, 24-bit mantissa) that is exactly the float32 ``in_scale * w_scale / out_scale``
onnxruntime evaluates in that order. The library rebuilds that float32 and applies it on the Cortex-M7's
FPU like onnxruntime's requantizer (float product, round half to even): a Q31 fixed-point product, as
CMSIS-NN does it, rounds differently from onnxruntime on some values.

Supported graph: QuantizeLinear on the float input, then a chain of DQ → Conv/MaxPool → Q steps (ReLU
folded into the output clamp where the quantizer dropped it, or an explicit Relu), then a float tail of
DequantizeLinear → [DepthToSpace] → [Softmax] (the FOMO head). Anything else is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from shared.manifest import load_manifest

HEADER_NAME = "es_model_data.h"


class ExportError(ValueError):
    """The model uses something the C library does not implement."""


@dataclass
class Layer:
    op: str  # "conv" | "maxpool"
    in_shape: tuple[int, int, int]  # C, H, W
    out_shape: tuple[int, int, int]
    kernel: int
    stride: int
    pad: int
    dilation: int = 1
    groups: int = 1
    in_zp: int = 0
    out_zp: int = 0
    in_scale: float = 1.0
    out_scale: float = 1.0
    weights: np.ndarray | None = None  # int8 [O, I/groups, k, k]
    bias: np.ndarray | None = None  # int32 [O]
    multiplier: np.ndarray | None = None  # float32 [O]


@dataclass
class QModel:
    name: str
    version: str
    input_shape: tuple[int, int, int]
    input_scale: float
    input_zp: int
    pixel_scale: float  # manifest: float input = pixel * pixel_scale
    layers: list[Layer] = field(default_factory=list)
    out_scale: float = 1.0
    out_zp: int = 0
    depth_to_space: int = 1
    d2s_mode: str = "CRD"
    softmax: bool = False
    labels: list[str] = field(default_factory=list)
    background: int = 0
    threshold: float = 0.5
    connectivity: list[int] = field(default_factory=list)
    merge_gap: list[tuple[int, int]] = field(default_factory=list)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.layers[-1].out_shape
        b = self.depth_to_space
        return c // (b * b), h * b, w * b


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _square(values: list[int], what: str, node: onnx.NodeProto) -> int:
    if len(set(values)) != 1:
        raise ExportError(f"{node.name or node.op_type}: non-uniform {what} {values} is not supported")
    return int(values[0])


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = [o.name for o in model.graph.output]

    def only_consumer(self, tensor: str) -> onnx.NodeProto:
        users = self.consumers.get(tensor, [])
        if len(users) != 1:
            raise ExportError(f"tensor {tensor!r} has {len(users)} consumers; a plain chain is required")
        return users[0]

    def scalar(self, name: str) -> float | int:
        return self.init[name].reshape(-1)[0].item()

    def dq_initializer(self, tensor: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dq = self.producer[tensor]
        if dq.op_type != "DequantizeLinear":
            raise ExportError(f"{tensor!r} is not a dequantized initializer")
        zp = self.init[dq.input[2]] if len(dq.input) > 2 else np.zeros(1, np.int8)
        return self.init[dq.input[0]], self.init[dq.input[1]].astype(np.float32), zp


def _conv_layer(g: _Graph, node: onnx.NodeProto, shape, in_scale, in_zp) -> tuple[Layer, str]:
    a = _attrs(node)
    w, w_scale, w_zp = g.dq_initializer(node.input[1])
    if w.dtype != np.int8 or np.any(w_zp != 0):
        raise ExportError(f"{node.name}: weights must be symmetric int8")
    k = _square(list(w.shape[2:]), "kernel", node)
    stride = _square(a.get("strides", [1, 1]), "strides", node)
    pad = _square(a.get("pads", [0, 0, 0, 0]), "pads", node)
    dil = _square(a.get("dilations", [1, 1]), "dilations", node)
    groups = int(a.get("group", 1))
    if len(node.input) > 2:
        b, b_scale, _ = g.dq_initializer(node.input[2])
        bias = b.astype(np.int32)
    else:
        bias = np.zeros(w.shape[0], np.int32)
    out = node.output[0]
    nxt = g.only_consumer(out)
    relu = False
    if nxt.op_type == "Relu":
        relu, out = True, nxt.output[0]
        nxt = g.only_consumer(out)
    if nxt.op_type != "QuantizeLinear":
        raise ExportError(f"{node.name}: output goes to {nxt.op_type}, expected QuantizeLinear")
    out_scale, out_zp = float(g.scalar(nxt.input[1])), int(g.scalar(nxt.input[2]))
    if g.init[nxt.input[2]].dtype != np.uint8:
        raise ExportError(f"{node.name}: activations must be uint8")
    if relu and out_zp != 0:
        raise ExportError(f"{node.name}: an explicit Relu needs output zero point 0 (it is {out_zp})")
    # float32 arithmetic in onnxruntime's order: (in_scale * w_scale) / out_scale.
    mult = (np.float32(in_scale) * np.broadcast_to(w_scale, (w.shape[0],)).astype(np.float32)) / np.float32(
        out_scale
    )
    c, h, wd = shape
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (k - 1) - 1) // stride + 1
    if w.shape[1] * groups != c:
        raise ExportError(f"{node.name}: weight shape {w.shape} does not fit {c} input channels")
    layer = Layer(
        "conv",
        (c, h, wd),
        (int(w.shape[0]), oh, ow),
        k,
        stride,
        pad,
        dil,
        groups,
        in_zp,
        out_zp,
        in_scale,
        out_scale,
        w.astype(np.int8),
        bias,
        mult.astype(np.float32),
    )
    return layer, nxt.output[0]


def _maxpool_layer(g: _Graph, node: onnx.NodeProto, shape, in_scale, in_zp) -> tuple[Layer, str]:
    a = _attrs(node)
    k = _square(list(a["kernel_shape"]), "kernel", node)
    stride = _square(a.get("strides", [1, 1]), "strides", node)
    pad = _square(a.get("pads", [0, 0, 0, 0]), "pads", node)
    if a.get("ceil_mode", 0) or _square(a.get("dilations", [1, 1]), "dilations", node) != 1:
        raise ExportError(f"{node.name}: ceil_mode and dilated pooling are not supported")
    q = g.only_consumer(node.output[0])
    if q.op_type != "QuantizeLinear":
        raise ExportError(f"{node.name}: output goes to {q.op_type}, expected QuantizeLinear")
    out_scale, out_zp = float(g.scalar(q.input[1])), int(g.scalar(q.input[2]))
    if not np.isclose(out_scale, in_scale) or out_zp != in_zp:
        raise ExportError(f"{node.name}: max pooling must keep the input's quantization")
    c, h, w = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    return Layer(
        "maxpool", shape, (c, oh, ow), k, stride, pad, 1, 1, in_zp, out_zp, in_scale, out_scale
    ), q.output[0]


def parse(model_dir: Path) -> QModel:
    """Read ``model.onnx`` + ``manifest.json`` in ``model_dir`` into the layer list the C library runs."""
    manifest, model_path = load_manifest(model_dir)
    model = onnx.load(str(model_path))
    g = _Graph(model)
    spec = manifest.input
    if spec.layout != "NCHW" or spec.dtype != "float32":
        raise ExportError("only NCHW float32 inputs (quantized by the model) are supported")
    if any(m != 0.0 for m in spec.mean) or any(s != 1.0 for s in spec.std):
        raise ExportError("mean/std normalisation is not supported on the microcontroller")
    q_in = g.only_consumer(model.graph.input[0].name)
    if q_in.op_type != "QuantizeLinear":
        raise ExportError("the model's input must go straight into QuantizeLinear")
    c, h, w = (int(d) for d in spec.shape[1:])
    qm = QModel(
        manifest.name,
        manifest.version,
        (c, h, w),
        float(g.scalar(q_in.input[1])),
        int(g.scalar(q_in.input[2])),
        float(spec.scale),
    )
    tensor, shape = q_in.output[0], (c, h, w)
    scale, zp = qm.input_scale, qm.input_zp
    while True:
        dq = g.only_consumer(tensor)
        if dq.op_type != "DequantizeLinear":
            raise ExportError(f"quantized tensor {tensor!r} goes to {dq.op_type}, expected DequantizeLinear")
        op = g.only_consumer(dq.output[0])
        if op.op_type == "Conv":
            layer, tensor = _conv_layer(g, op, shape, scale, zp)
        elif op.op_type == "MaxPool":
            layer, tensor = _maxpool_layer(g, op, shape, scale, zp)
        else:
            break
        qm.layers.append(layer)
        shape, scale, zp = layer.out_shape, layer.out_scale, layer.out_zp
    if not qm.layers:
        raise ExportError("no quantized layers found")
    qm.out_scale, qm.out_zp = scale, zp
    tail = dq.output[0]
    while tail not in g.outputs:
        node = g.only_consumer(tail)
        if node.op_type == "DepthToSpace":
            a = _attrs(node)
            qm.depth_to_space = int(a["blocksize"])
            mode = a.get("mode", b"DCR")
            qm.d2s_mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        elif node.op_type == "Softmax" and int(_attrs(node).get("axis", -1)) == 1:
            qm.softmax = True
        else:
            raise ExportError(f"float tail op {node.op_type} is not supported")
        tail = node.output[0]
    dec = manifest.decoder
    if dec.type != "fomo" or dec.params.get("layout", "NCHW") != "NCHW":
        raise ExportError("only FOMO heads in NCHW layout are supported")
    qm.labels = list(manifest.labels)
    qm.background = int(dec.background_index)
    qm.threshold = float(dec.score_threshold)
    conn = dec.params.get("connectivity", {})
    gaps = dec.params.get("merge_gap", {})
    qm.connectivity = [int(conn.get(label, 8)) for label in qm.labels]
    qm.merge_gap = [_gap(gaps.get(label)) for label in qm.labels]
    if qm.out_shape[0] != len(qm.labels):
        raise ExportError(f"head has {qm.out_shape[0]} classes, manifest {len(qm.labels)} labels")
    if not qm.softmax and not dec.apply_softmax:
        raise ExportError("the head must end in probabilities (Softmax in the model or apply_softmax)")
    qm.softmax = True
    return qm


def _gap(gap) -> tuple[int, int]:
    if not gap:
        return (0, 0)
    return (int(gap), int(gap)) if isinstance(gap, int) else (int(gap[0]), int(gap[1]))


def mantissa_shift(m: float) -> tuple[int, int]:
    """``m == mant * 2**-shift`` exactly, ``mant`` < 2^24 (a float32's significand)."""
    frac, exp = np.frexp(np.float32(m))
    mant = int(np.ldexp(np.float64(frac), 24))
    return mant, 24 - int(exp)


def input_lut(qm: QModel) -> np.ndarray:
    """Pixel 0..255 → quantized input, as onnxruntime's QuantizeLinear computes it from pixel*scale."""
    x = np.arange(256, dtype=np.float32) * np.float32(qm.pixel_scale)
    q = np.rint(x / np.float32(qm.input_scale)) + qm.input_zp
    return np.clip(q, 0, 255).astype(np.uint8)


def _array(ctype: str, name: str, values: np.ndarray, fmt) -> str:
    items = [fmt(v) for v in values.reshape(-1)]
    rows = [", ".join(items[i : i + 16]) for i in range(0, len(items), 16)]
    body = ",\n  ".join(rows)
    return f"static const {ctype} {name}[{len(items)}] = {{\n  {body}\n}};\n"


def _float(v) -> str:
    return f"{float(np.float32(v)).hex()}f" if v else "0.0f"


def render_header(qm: QModel) -> str:
    """The header text; it includes ``es_nn.h`` for the layer struct and is included by one C file."""
    lines = [
        f"/* Generated by `python -m firmware_models export-c` from {qm.name} {qm.version}. Do not edit. */",
        "#ifndef ES_MODEL_DATA_H",
        "#define ES_MODEL_DATA_H",
        '#include "es_nn.h"',
        '#include "es_fomo.h"',
        "",
        f'#define ES_MODEL_NAME "{qm.name}"',
        f'#define ES_MODEL_VERSION "{qm.version}"',
        f"#define ES_IN_C {qm.input_shape[0]}",
        f"#define ES_IN_H {qm.input_shape[1]}",
        f"#define ES_IN_W {qm.input_shape[2]}",
        f"#define ES_N_LAYERS {len(qm.layers)}",
        f"#define ES_ARENA_A_BYTES {arena_sizes(qm)[0]}",
        f"#define ES_ARENA_B_BYTES {arena_sizes(qm)[1]}",
        f"#define ES_ACC_WORDS {max(layer.out_shape[1] * layer.out_shape[2] for layer in qm.layers)}",
        f"#define ES_RAW_C {qm.layers[-1].out_shape[0]}",
        f"#define ES_RAW_H {qm.layers[-1].out_shape[1]}",
        f"#define ES_RAW_W {qm.layers[-1].out_shape[2]}",
        f"#define ES_N_CLASSES {qm.out_shape[0]}",
        f"#define ES_GRID_H {qm.out_shape[1]}",
        f"#define ES_GRID_W {qm.out_shape[2]}",
        "",
        "/* Pixel value 0..255 -> quantized model input (QuantizeLinear of pixel * manifest scale). */",
        _array("uint8_t", "es_input_lut", input_lut(qm), str),
    ]
    for i, layer in enumerate(qm.layers):
        if layer.op != "conv":
            continue
        assert layer.weights is not None and layer.bias is not None and layer.multiplier is not None
        pairs = [mantissa_shift(m) for m in layer.multiplier]
        lines += [
            f"/* layer {i}: conv {layer.in_shape} -> {layer.out_shape}, k{layer.kernel} s{layer.stride} "
            f"p{layer.pad} d{layer.dilation} g{layer.groups}; in zp {layer.in_zp}, out zp {layer.out_zp}, "
            f"out scale {layer.out_scale:.9g} */",
            _array("int8_t", f"es_w{i}", layer.weights, str),
            _array("int32_t", f"es_b{i}", layer.bias, str),
            "/* requant multiplier per output channel: mantissa * 2^-shift is exactly the float32",
            "   in_scale * w_scale / out_scale that onnxruntime multiplies by */",
            _array("int32_t", f"es_m{i}", np.array([p[0] for p in pairs]), str),
            _array("int8_t", f"es_s{i}", np.array([p[1] for p in pairs]), str),
        ]
    rows = []
    for i, layer in enumerate(qm.layers):
        ptrs = f"es_w{i}, es_b{i}, es_m{i}, es_s{i}" if layer.op == "conv" else "0, 0, 0, 0"
        op = "ES_OP_CONV" if layer.op == "conv" else "ES_OP_MAXPOOL"
        rows.append(
            f"  {{{op}, {', '.join(map(str, layer.in_shape))}, {', '.join(map(str, layer.out_shape))}, "
            f"{layer.kernel}, {layer.stride}, {layer.pad}, {layer.dilation}, {layer.groups}, "
            f"{layer.in_zp}, {layer.out_zp}, {ptrs}}}"
        )
    labels = ", ".join(json.dumps(label) for label in qm.labels)
    lines += [
        "static const es_layer_t es_layers[ES_N_LAYERS] = {",
        ",\n".join(rows),
        "};",
        "",
        "/* The float tail and the FOMO decoder (manifest decoder block). */",
        "static const es_head_t es_head = {",
        f"  {_float(qm.out_scale)}, {qm.out_zp}, {qm.depth_to_space}, {1 if qm.d2s_mode == 'CRD' else 0},",
        f"  ES_N_CLASSES, ES_GRID_H, ES_GRID_W, {qm.background}, {_float(qm.threshold)},",
        f"  {{{', '.join(map(str, qm.connectivity))}}},",
        f"  {{{', '.join(str(g[0]) for g in qm.merge_gap)}}},",
        f"  {{{', '.join(str(g[1]) for g in qm.merge_gap)}}},",
        "};",
        f"static const char *const es_labels[ES_N_CLASSES] = {{{labels}}};",
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def arena_sizes(qm: QModel) -> tuple[int, int]:
    """Two ping-pong buffers: A holds the input and every odd layer's output, B every even one's."""
    sizes = [int(np.prod(qm.input_shape))] + [int(np.prod(layer.out_shape)) for layer in qm.layers]
    return max(sizes[0::2]), max(sizes[1::2])


def export_c(model_dir: Path, out_dir: Path) -> Path:
    qm = parse(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / HEADER_NAME
    text = render_header(qm)
    if not path.exists() or path.read_text() != text:  # keep make's timestamps quiet when unchanged
        path.write_text(text)
    return path
