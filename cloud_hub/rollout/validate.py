"""What the registry checks before it signs anything: the manifest describes this file, onnxruntime
loads it, its inputs and outputs are the manifest's, and the golden inputs give the golden outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.int8_precision import ort_session_config
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


def _index(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def validate_model(model_path: Path, manifest_path: Path) -> ModelManifest:
    """Return the manifest with sha256 and size filled in, or raise ModelRejected."""
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
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        for key, value in ort_session_config().items():  # golden outputs hold on x86 CPUs without VNNI
            opts.add_session_config_entry(key, value)
        session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ModelRejected(f"onnxruntime cannot load {model_path.name}: {exc}") from None
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
    check_golden(session, manifest, model_path.parent)
    return manifest


def check_golden(session: ort.InferenceSession, manifest: ModelManifest, folder: Path) -> None:
    if manifest.golden is None:
        raise ModelRejected("manifest has no golden spec: devices could not self-test this model")
    path = folder / manifest.golden.file
    try:
        with np.load(path) as npz:
            inputs = [npz[k] for k in sorted((k for k in npz.files if k.startswith("input_")), key=_index)]
            expected = [npz[k] for k in sorted((k for k in npz.files if k.startswith("output_")), key=_index)]
    except (OSError, ValueError) as exc:
        raise ModelRejected(f"golden file {path}: {exc}") from None
    if not inputs or not expected:
        raise ModelRejected(f"golden file {path.name} has no input_N / output_N arrays")
    names = [o.name for o in manifest.outputs]
    actual: list[np.ndarray] = []
    try:
        for tensor in inputs:
            if tensor.shape[0] > 1 and manifest.input.shape[0] == 1:
                rows = [
                    session.run(names, {manifest.input.name: tensor[i : i + 1]}) for i in range(len(tensor))
                ]
                actual += [np.concatenate([r[k] for r in rows]) for k in range(len(names))]
            else:
                actual += session.run(names, {manifest.input.name: tensor})
    except Exception as exc:
        raise ModelRejected(f"inference on golden inputs failed: {exc}") from None
    if len(actual) != len(expected):
        raise ModelRejected(f"{len(actual)} outputs for {len(expected)} golden outputs")
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got.shape != want.shape:
            raise ModelRejected(f"golden output_{i}: shape {list(got.shape)} != expected {list(want.shape)}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
        if not np.isfinite(diff) or diff > manifest.golden.atol:
            raise ModelRejected(f"golden output_{i} differs by {diff:.4g} > atol {manifest.golden.atol}")
