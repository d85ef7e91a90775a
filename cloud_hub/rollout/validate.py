"""What the registry checks before it signs anything: the manifest describes this file, onnxruntime
loads it, its inputs and outputs are the manifest's, and the golden inputs give the golden outputs."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort

from model_runtime import golden
from model_runtime.session import open_session, overridable_initializers
from shared.manifest import ManifestError, ModelManifest, parse_manifest, sha256_file


class ModelRejected(ValueError):
    """A model the registry refuses; the message says exactly what is wrong."""


def _shape_matches(declared: tuple, actual: list) -> bool:
    if len(declared) != len(actual):
        return False
    return all(
        not isinstance(d, int) or not isinstance(a, int) or d == a
        for d, a in zip(declared, actual, strict=True)
    )


def validate_model(model_path: Path, manifest_path: Path, require_golden: bool = True) -> ModelManifest:
    """Return the manifest with sha256 and size filled in, or raise ModelRejected.

    ``require_golden`` off (teachers: they never reach a device, so there is no device self-test to make
    possible) still checks a golden file the manifest names."""
    try:
        raw = json.loads(manifest_path.read_text())
        manifest = parse_manifest(raw, source=str(manifest_path))
    except (OSError, json.JSONDecodeError, ManifestError) as exc:
        raise ModelRejected(str(exc)) from None
    sha, size = sha256_file(model_path), model_path.stat().st_size
    if manifest.sha256 not in (None, sha):
        raise ModelRejected(f"{model_path}: sha256 {sha} does not match manifest {manifest.sha256}")
    if manifest.size_bytes not in (None, size):
        raise ModelRejected(f"{model_path}: size {size} does not match manifest {manifest.size_bytes}")
    manifest = manifest.model_copy(update={"sha256": sha, "size_bytes": size, "file": model_path.name})
    try:
        session = open_session(model_path)  # the devices' settings: golden outputs hold without VNNI
    except Exception as exc:  # onnxruntime's own exception types
        raise ModelRejected(f"onnxruntime cannot load {model_path.name}: {exc}") from None
    folded = overridable_initializers(session)
    if folded:
        raise ModelRejected(
            f"{len(folded)} weights are also graph inputs (onnxruntime cannot fold them, so every device "
            "would run it slower): run `python -m firmware_models import` on it first"
        )
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != manifest.input.name:
        raise ModelRejected(
            f"model inputs {[i.name for i in inputs]} != manifest input {manifest.input.name!r}"
        )
    if not _shape_matches(manifest.input.shape, inputs[0].shape):
        raise ModelRejected(f"model input shape {inputs[0].shape} != manifest {list(manifest.input.shape)}")
    outputs = {o.name: o for o in session.get_outputs()}
    for spec in manifest.outputs:
        if spec.name not in outputs:
            raise ModelRejected(f"manifest output {spec.name!r} not in model outputs {sorted(outputs)}")
        if spec.shape is not None and not _shape_matches(spec.shape, outputs[spec.name].shape):
            raise ModelRejected(
                f"output {spec.name!r} shape {outputs[spec.name].shape} != manifest {spec.shape}"
            )
    if require_golden or manifest.golden is not None:
        check_golden(session, manifest, model_path.parent)
    return manifest


def check_golden(session: ort.InferenceSession, manifest: ModelManifest, folder: Path) -> None:
    names = [o.name for o in manifest.outputs]
    try:
        golden.check_golden(lambda x: session.run(names, {manifest.input.name: x}), manifest, folder)
    except golden.GoldenError as exc:
        raise ModelRejected(str(exc)) from None
