"""What onnxruntime computes for the same pixels: the raw int8 head tensor and the decoded detections.

The raw tensor is the output of the model's last QuantizeLinear (before the float DequantizeLinear →
DepthToSpace → Softmax tail), exposed as an extra graph output so the firmware can be compared bit for
bit; the detections come from the model runtime's FOMO blobs on onnxruntime's probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from firmware_models.evaluate import session
from model_runtime.decoders.fomo import Blob, blobs
from shared.manifest import ModelManifest, load_manifest


@dataclass(frozen=True)
class BoardDetection:
    """One detection as the firmware reports it (normalised to the model grid)."""

    label: int
    score: float
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]

    @classmethod
    def of(cls, b: Blob, labels: tuple[str, ...]) -> BoardDetection:
        """The firmware's convention: own cells only (no ring) in the centre, the cells' extent as box."""
        rows, cols = b.grid
        x, y, w, h = b.cells
        return cls(
            labels.index(b.label),
            b.score,
            (b.centre[0] / cols, b.centre[1] / rows),
            (x / cols, y / rows, (x + w) / cols, (y + h) / rows),
        )


class OrtReference:
    """onnxruntime (the project's exact int8 settings) with the raw head tensor as an extra output."""

    def __init__(self, model_dir: Path):
        self.manifest: ModelManifest
        self.manifest, model_path = load_manifest(model_dir)
        model = onnx.load(str(model_path))
        raw = _last_quantized(model)
        model.graph.output.append(onnx.helper.make_tensor_value_info(raw, onnx.TensorProto.UINT8, None))
        self.raw_name = raw
        self.session = _session_from_bytes(model.SerializeToString())
        self.tail = _session_from_bytes(_tail_model(onnx.load(str(model_path)), raw).SerializeToString())

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, list[BoardDetection]]:
        """Pixels ``[C, H, W]`` uint8 → (raw head tensor uint8 ``[C', H', W']``, detections)."""
        x = (pixels.astype(np.float32) * np.float32(self.manifest.input.scale))[None]
        probs, raw = self.session.run(None, {self.session.get_inputs()[0].name: x})
        return raw[0], self._detections(probs)

    def _detections(self, probs: np.ndarray) -> list[BoardDetection]:
        m = self.manifest
        return [BoardDetection.of(b, m.labels) for b in blobs({m.outputs[0].name: probs}, m, refine=False)]

    def decode_raw(self, raw: np.ndarray) -> list[BoardDetection]:
        """A raw head tensor through onnxruntime's float tail (dequantize, depth-to-space, softmax) and
        the reference decoder: what the firmware's decoder must agree with."""
        (probs,) = self.tail.run(None, {self.raw_name: raw[None]})
        return self._detections(probs)


def compare_detections(
    board: list[BoardDetection], ref: list[BoardDetection], tol: float = 1e-5
) -> list[str]:
    """Differences between two detection lists (order-free): the same labels and blobs (exact boxes),
    centroids and scores equal up to float32 rounding (the board's expf is not onnxruntime's)."""

    def blob(d: BoardDetection) -> tuple:  # boxes lie on the grid: 4 decimals tell cells apart
        return (d.label, *(round(v, 4) for v in d.bbox), *(round(v, 3) for v in d.centroid))

    a, b = sorted(board, key=blob), sorted(ref, key=blob)
    if [blob(d)[:5] for d in a] != [blob(d)[:5] for d in b]:
        return [f"blobs differ: board {[blob(d)[:5] for d in a]} vs reference {[blob(d)[:5] for d in b]}"]
    problems = []
    for x, y in zip(a, b, strict=True):
        if (
            abs(x.score - y.score) > tol
            or max(abs(p - q) for p, q in zip(x.centroid, y.centroid, strict=True)) > tol
        ):
            problems.append(f"{x} vs {y}")
    return problems


def _tail_model(model: onnx.ModelProto, raw: str) -> onnx.ModelProto:
    """The float tail of ``model`` (everything fed by ``raw``) as a model of its own."""
    nodes, wanted = [], {raw}
    for node in model.graph.node:
        if any(i in wanted for i in node.input):
            nodes.append(node)
            wanted.update(node.output)
    used = {i for n in nodes for i in n.input}
    inits = [i for i in model.graph.initializer if i.name in used]
    graph = onnx.helper.make_graph(
        nodes,
        "tail",
        [onnx.helper.make_tensor_value_info(raw, onnx.TensorProto.UINT8, None)],
        list(model.graph.output),
        inits,
    )
    return onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def _last_quantized(model: onnx.ModelProto) -> str:
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    if not q:
        raise ValueError("not a QDQ model")
    return q[-1].output[0]


def _session_from_bytes(data: bytes):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        return session(path)
