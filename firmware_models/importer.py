"""``python -m firmware_models import MODEL.onnx --out DIR``: take a foreign ONNX export as it is.

Fixes what can be fixed without changing its outputs — initializers out of the graph inputs (else
onnxruntime cannot fold them), names for unnamed nodes (quantizer exclusions and reports name nodes),
opset ≥ 13 via the onnx version converter (per-channel DequantizeLinear needs it), a fixed batch of 1,
shape inference — then proves the fixed model gives the original's outputs, writes a manifest draft
(inputs, outputs bound by role, a guessed decoder, the family's preprocessing) and says plainly what it
did, what it assumed, and what the user must still fill in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference, version_converter

from model_runtime.session import SessionSettings, open_session
from shared.manifest import ModelManifest, sha256_file

from .families import guess, labels_for

MIN_OPSET = 13
OUTPUT_RTOL = 1e-4  # of the output's range: graph rewrites only reorder float arithmetic


class ImportFailed(ValueError):
    """The model cannot be imported as it is; the message names the problem."""


@dataclass
class ImportReport:
    source: str
    out: str
    fixed: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    max_output_diff: float = 0.0
    family: str = ""

    def text(self) -> str:
        lines = [f"imported {self.source} → {self.out}/model.onnx + manifest.json ({self.family})"]
        lines += [f"  fixed: {x}" for x in self.fixed] or ["  fixed: nothing needed fixing"]
        lines.append(f"  outputs equal to the original's within {self.max_output_diff:.2g} (checked)")
        lines += [f"  assumed: {x}" for x in self.assumed]
        lines += [f"  TODO: {x}" for x in self.todo] or ["  TODO: nothing; next: quantize"]
        return "\n".join(lines)


def _dims(value_info: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    return tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value_info.type.tensor_type.shape.dim
    )


def strip_initializer_inputs(model: onnx.ModelProto) -> list[str]:
    """Remove graph inputs that are really initializers (pre-IR4 style exports); returns their names."""
    initializers = {init.name for init in model.graph.initializer}
    stripped = [inp.name for inp in model.graph.input if inp.name in initializers]
    keep = [inp for inp in model.graph.input if inp.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return stripped


def name_nodes(model: onnx.ModelProto) -> int:
    """Give every unnamed (or repeated) node a unique name; returns how many were renamed."""
    seen: set[str] = set()
    renamed = 0
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
            renamed += 1
        seen.add(node.name)
    return renamed


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def fix_batch(model: onnx.ModelProto) -> list[str]:
    """A symbolic batch dimension becomes 1 (the runtime feeds one frame; the quantizer wants shapes)."""
    changed = []
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            changed.append(f"{value.name} batch {dims[0].dim_param or '?'} → 1")
            dims[0].dim_value = 1
    return changed


def _run(model: onnx.ModelProto | bytes, feed: np.ndarray, input_name: str) -> dict[str, np.ndarray]:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    session = open_session(data, SessionSettings(precision="exact"))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {input_name: feed}), strict=True))


def input_layout(shape: tuple[int | str, ...]) -> tuple[str, int, int]:
    """NCHW or NHWC, height, width of an image input; ImportFailed when it is not one."""
    if len(shape) != 4:
        raise ImportFailed(f"input has shape {list(shape)}: not an image batch [N, C, H, W] or [N, H, W, C]")
    if shape[1] in (1, 3) and isinstance(shape[2], int) and isinstance(shape[3], int):
        return "NCHW", shape[2], shape[3]
    if shape[3] in (1, 3) and isinstance(shape[1], int) and isinstance(shape[2], int):
        return "NHWC", shape[1], shape[2]
    raise ImportFailed(
        f"input shape {list(shape)}: height and width must be fixed numbers with 1 or 3 channels "
        "(re-export with a fixed input size)"
    )


def import_model(
    source: Path,
    out: Path,
    name: str | None = None,
    version: str = "1.0.0",
    input_overrides: dict[str, Any] | None = None,
    score_threshold: float = 0.3,
) -> ImportReport:
    source, out = Path(source), Path(out)
    report = ImportReport(str(source), str(out))
    try:
        original = onnx.load(str(source))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ImportFailed(f"{source}: not a readable ONNX model: {exc}") from None
    model = onnx.ModelProto()
    model.CopyFrom(original)
    stripped = strip_initializer_inputs(model)
    if stripped:
        report.fixed.append(f"{len(stripped)} initializers were also graph inputs: taken out (now foldable)")
    renamed = name_nodes(model)
    if renamed:
        report.fixed.append(f"{renamed} of {len(model.graph.node)} nodes had no (or a repeated) name: named")
    opset = opset_of(model)
    if opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # the converter raises RuntimeError/ValidationError with its reason
            raise ImportFailed(
                f"cannot raise opset {opset} to {MIN_OPSET} with the onnx version converter: {exc}"
            ) from None
        report.fixed.append(f"opset {opset} → {MIN_OPSET} (per-channel int8 weights need ≥ 13)")
    inputs = list(model.graph.input)
    if len(inputs) != 1:
        raise ImportFailed(
            f"the model takes {len(inputs)} inputs ({[i.name for i in inputs]}); one image is supported"
        )
    report.fixed += [f"dynamic {x}" for x in fix_batch(model)]
    try:
        model = shape_inference.infer_shapes(model, strict_mode=False)
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ImportFailed(f"the fixed model is not valid ONNX: {exc}") from None
    inp = model.graph.input[0]
    shape = _dims(inp)
    layout, height, width = input_layout(shape)
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ImportFailed(f"input {inp.name!r} is not float32; bring the fp32 export")

    feed = np.random.default_rng(0).uniform(0, 255, size=[int(d) for d in shape]).astype(np.float32)
    try:
        before = _run(original, feed, inp.name)
    except Exception as exc:
        raise ImportFailed(f"onnxruntime cannot run the original model: {exc}") from None
    after = _run(model, feed, inp.name)
    for key, want in before.items():
        got = after.get(key)
        if got is None or got.shape != want.shape:
            raise ImportFailed(
                f"output {key!r} changed shape after fixing: {None if got is None else got.shape}"
            )
        diff = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        if diff > OUTPUT_RTOL * scale:
            raise ImportFailed(
                f"output {key!r} differs by {diff:.3g} after fixing: refusing to change the model"
            )
        report.max_output_diff = max(report.max_output_diff, diff)

    outputs = {o.name: tuple(after[o.name].shape) for o in model.graph.output}
    found = guess(outputs, width, height)
    if found is None:
        raise ImportFailed(
            f"no decoder fits outputs {json.dumps({k: list(v) for k, v in outputs.items()})}: supported are "
            "classifier [1,N], fomo [1,N,H,W], ssd boxes [1,K,4] + scores [1,K,N], yolo v5/v8/x, "
            "gfl (NanoDet)"
        )
    report.family = found.family
    report.assumed += found.notes
    labels, label_map, known = labels_for(found.classes)
    if known:
        report.assumed.append(
            f"{len(labels)} classes = COCO-80; label_map keeps {sorted(label_map['names'])}"
        )
    else:
        report.todo.append(f"labels: name the {found.classes} classes (placeholders class_0.. written)")
    preprocessing = {**found.input, **(input_overrides or {})}
    if not found.input and not input_overrides:
        report.todo.append(
            "input: colour order, scale, mean/std and resize are defaults (RGB, 1/255) — check them"
        )
    elif input_overrides:
        report.assumed.append(f"input settings given: {sorted(input_overrides)}")
    channel_order = "NCHW" if layout == "NCHW" else "NHWC"
    manifest_data = {
        "name": name or _name_of(source),
        "version": version,
        "task": "classification" if found.decoder["type"] == "classifier" else "detection",
        "description": f"imported from {source.name} ({found.family})",
        "file": "model.onnx",
        "input": {
            "name": inp.name,
            "shape": [int(d) for d in shape],
            "layout": channel_order,
            **preprocessing,
        },
        "outputs": [
            {"name": o.name, "shape": list(outputs[o.name]), "role": found.roles.get(o.name)}
            for o in model.graph.output
        ],
        "decoder": {"score_threshold": score_threshold, "iou_threshold": 0.45, **found.decoder},
        "labels": list(labels),
        "precision": "fp32",
    }
    if label_map:
        manifest_data["label_map"] = label_map
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.onnx"
    onnx.save(model, str(path))
    manifest = ModelManifest.model_validate(
        {**manifest_data, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}
    )
    (out / "manifest.json").write_text(manifest.to_json())
    from .manifest_check import check

    report.todo += [p for p in check(manifest, path) if not p.startswith("note:")]
    (out / "import-report.json").write_text(json.dumps(report.__dict__, indent=2) + "\n")
    return report


def _name_of(source: Path) -> str:
    import re

    return re.sub(r"[^a-z0-9_.-]+", "-", source.stem.lower()).strip("-.")[:64] or "imported"
