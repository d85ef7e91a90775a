"""Check a manifest against the model it describes and say exactly what does not match.

The model is loaded and run once on a zero input, so the output shapes checked are the real ones even
when the file declares symbolic dimensions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from model_runtime.session import open_session
from shared.manifest import (
    DecoderType,
    ManifestError,
    ModelManifest,
    load_manifest,
    sha256_file,
)

from .importer import strip_initializer_inputs

ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
NP_DTYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8}


def _dims_match(declared: tuple, actual: tuple) -> bool:
    return len(declared) == len(actual) and all(
        isinstance(d, str) or d == a for d, a in zip(declared, actual, strict=True)
    )


def _load_session(model_path: Path) -> tuple[ort.InferenceSession | None, list[str]]:
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is reported, not raised
        return None, [f"model {model_path.name}: not a readable ONNX file ({exc.__class__.__name__}: {exc})"]
    stripped = strip_initializer_inputs(model)
    try:
        sess = open_session(model.SerializeToString())  # as the agent runs it
    except Exception as exc:  # noqa: BLE001
        return None, [f"model {model_path.name}: onnxruntime cannot load it: {exc}"]
    return sess, (
        [f"note: {len(stripped)} initializer(s) also listed as graph inputs (stripped before use)"]
        if stripped
        else []
    )


def check(manifest: ModelManifest, model_path: Path) -> list[str]:
    """Problems found (none when the manifest describes the model); lines starting 'note:' are only notes."""
    problems: list[str] = []
    if not model_path.exists():
        return [f"file: model file {model_path} does not exist"]
    if manifest.sha256 is not None and (actual := sha256_file(model_path)) != manifest.sha256:
        problems.append(f"sha256: manifest says {manifest.sha256} but the file's is {actual}")
    if manifest.size_bytes is not None and (size := model_path.stat().st_size) != manifest.size_bytes:
        problems.append(f"size_bytes: manifest says {manifest.size_bytes} but the file has {size}")
    sess, notes = _load_session(model_path)
    problems += notes
    if sess is None:
        return problems
    spec = manifest.input
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        problems.append(
            f"input: the model has {len(inputs)} inputs ({[i.name for i in inputs]}); exactly 1 is supported"
        )
        return problems
    real = inputs[0]
    if real.name != spec.name:
        problems.append(f"input.name: manifest says {spec.name!r} but the model's input is {real.name!r}")
    real_dtype = ORT_DTYPES.get(real.type, real.type)
    if real_dtype != spec.dtype:
        problems.append(f"input.dtype: manifest says {spec.dtype!r} but the model takes {real_dtype!r}")
    real_shape = tuple(d if isinstance(d, int) else str(d) for d in real.shape)
    if not _dims_match(real_shape, spec.shape):
        problems.append(
            f"input.shape: manifest says {list(spec.shape)} ({spec.layout}) but the model's input is "
            f"{list(real_shape)}"
        )
    want_c = 1 if spec.color == "GRAY" else 3
    if spec.channels != want_c:
        problems.append(
            f"input.color: {spec.color} needs {want_c} channel(s) but input.shape with layout "
            f"{spec.layout} has {spec.channels} at the channel position"
        )
    if len(spec.mean) not in (1, spec.channels):
        problems.append(f"input.mean: {len(spec.mean)} values for {spec.channels} channels")
    declared_outputs = [o.name for o in manifest.outputs]
    real_outputs = [o.name for o in sess.get_outputs()]
    for name in declared_outputs:
        if name not in real_outputs:
            problems.append(
                f"outputs: manifest names output {name!r} but the model's outputs are {real_outputs}"
            )
    if len(declared_outputs) != len(real_outputs):
        problems.append(
            f"outputs: manifest lists {len(declared_outputs)} output(s), the model has {len(real_outputs)}"
        )
    if any(p.startswith(("input.shape", "input.dtype")) for p in problems):
        return problems  # running it with the manifest's input would only repeat the same error
    try:
        feed = np.zeros(spec.shape, NP_DTYPES[spec.dtype])
        values = dict(zip(real_outputs, sess.run(None, {real.name: feed}), strict=True))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"run: the model fails on a zero input of shape {list(spec.shape)}: {exc}")
        return problems
    for out in manifest.outputs:
        if (
            out.name in values
            and out.shape is not None
            and not _dims_match(tuple(out.shape), values[out.name].shape)
        ):
            problems.append(
                f"outputs[{out.name}].shape: manifest says {list(out.shape)} but the model produces "
                f"{list(values[out.name].shape)}"
            )
    ordered = [values[n] for n in declared_outputs if n in values] or list(values.values())
    problems += _check_decoder(manifest, ordered)
    if not problems:
        problems += _run_decoder(manifest, values)
    return problems


def _run_decoder(manifest: ModelManifest, values: dict[str, np.ndarray]) -> list[str]:
    """The runtime's own decoder on the zero-input outputs: binding and shapes, as the agent will."""
    from model_runtime.decoders import DecoderError, get_decoder

    try:
        get_decoder(manifest.decoder.type)(values, manifest)
    except DecoderError as exc:
        return [f"decoder: {exc}"]
    return []


def _check_decoder(manifest: ModelManifest, outputs: list[np.ndarray]) -> list[str]:
    n = len(manifest.labels)
    dec = manifest.decoder
    kind = dec.type
    first = outputs[0].shape
    if kind == DecoderType.CLASSIFIER:
        if int(np.prod(first)) != n:
            return [
                f"labels: {n} labels but the classifier output {list(first)} has {int(np.prod(first))} scores"
            ]
    elif kind == DecoderType.FOMO:
        problems = []
        if len(first) != 4:
            return [f"decoder: fomo needs a 4-D heat map, the model's output is {list(first)}"]
        layout = dec.params.get("layout", "NCHW")
        channels = first[3] if layout == "NHWC" else first[1]
        if channels != n:
            problems.append(
                f"labels: {n} labels but the heat map ({layout}) {list(first)} has {channels} classes"
            )
        if dec.background_index is None:
            problems.append("decoder.background_index: fomo needs the index of the background class")
        stride = dec.params.get("stride")
        grid = (first[1], first[2]) if layout == "NHWC" else (first[2], first[3])
        if stride and (manifest.input.height // stride, manifest.input.width // stride) != tuple(grid):
            problems.append(
                f"decoder.params.stride: {stride} implies a {manifest.input.height // stride}x"
                f"{manifest.input.width // stride} grid but the model's is {grid[0]}x{grid[1]}"
            )
        return problems
    elif kind == DecoderType.SSD:
        if len(outputs) != 2:
            return [f"outputs: ssd needs 2 outputs (boxes, scores), the model has {len(outputs)}"]
        from model_runtime.decoders.common import DecoderError, pick

        values = dict(zip([o.name for o in manifest.outputs], outputs, strict=True))
        try:
            boxes = pick(values, manifest, "boxes", ("box", "loc"))
            scores = pick(values, manifest, "scores", ("score", "conf", "cls"))
        except DecoderError as exc:
            return [f"outputs: {exc}"]
        problems = []
        if boxes.shape[-1] != 4 or boxes.ndim != 3:
            problems.append(f"outputs: ssd boxes must be [1, K, 4], the model's are {list(boxes.shape)}")
        if scores.ndim != 3 or scores.shape[-1] != n:
            problems.append(f"labels: {n} labels but ssd scores are {list(scores.shape)} (want [1, K, {n}])")
        elif boxes.ndim == 3 and boxes.shape[1] != scores.shape[1]:
            problems.append(f"outputs: ssd boxes have K={boxes.shape[1]} but scores K={scores.shape[1]}")
        return problems
    elif kind == DecoderType.YOLO:
        if len(first) != 3:
            return [f"decoder: yolo needs a 3-D output, the model's is {list(first)}"]
        declared = dec.params.get("version")
        version = None if declared is None else str(declared).lower().lstrip("v")
        v5_ok, v8_ok = first[2] == 5 + n, first[1] == 4 + n
        if version not in (None, "5", "8", "x"):
            return [f"decoder.params.version: {declared!r} is not 5, 8 or x"]
        if version in ("5", "x") and not v5_ok:
            return [f"labels: yolo v5 rows need 5+{n}={5 + n} values, the output is {list(first)}"]
        if version == "8" and not v8_ok:
            return [f"labels: yolo v8 needs [1, 4+{n}={4 + n}, K], the output is {list(first)}"]
        if version is None and not (v5_ok or v8_ok):
            return [
                f"labels: {n} labels fit neither yolo v5 [1, K, {5 + n}] nor v8 [1, {4 + n}, K]; "
                f"output is {list(first)}"
            ]
    return []


def check_path(manifest_path: str | Path, model_path: str | Path | None = None) -> list[str]:
    """Parse the manifest (reporting its field errors) and check it against its model file."""
    try:
        manifest, default_model = load_manifest(manifest_path, verify_file=False)
    except ManifestError as exc:
        return str(exc).splitlines()
    return check(manifest, Path(model_path) if model_path else default_model)
