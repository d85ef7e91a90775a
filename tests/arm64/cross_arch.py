"""x86 reference outputs for the cross-architecture golden test (tests/arm64/test_cross_arch.py).

`make test-arm` runs this on the x86 host first:

    python -m tests.arm64.cross_arch --out DIR [--toolchain]

It writes ``DIR/reference.npz``: for every committed reference model, int8 and fp32, and (with
``--toolchain``) for int8 models quantized now by the issue-9 toolchain (``firmware_models.quantize``,
``reduce_range`` off and on) whose files go to ``DIR/models/``, the input tensors (made here, so both
sides feed the network the same bytes), the raw outputs and the decoded detections. The arm64 side
loads the same models and inputs and must give the same outputs (int8 bit for bit, fp32 within 1e-5)
and the same detections.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware_models import EXPERIMENTAL_DIR, REFERENCE_DIR
from model_runtime import ModelRuntime, preprocess
from model_runtime.session import SessionSettings
from shared.manifest import ModelManifest, load_manifest

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "tests" / "data" / "people-walking.mp4"
FP32_ATOL = 1e-5
TOOLCHAIN_BASE = "fomo-street"  # the issue-9 toolchain re-quantizes this fp32 model


@dataclass(frozen=True)
class Case:
    """One network file under test: ``key`` names it in reference.npz."""

    key: str
    model_dir: Path
    model_path: Path
    precision: str  # int8 | fp32

    def runtime(self) -> ModelRuntime:
        manifest, _ = load_manifest(self.model_dir)
        # The agent's own session settings: one thread, precision "auto" as on a camera.
        return ModelRuntime(self.model_dir, SessionSettings(), manifest=manifest, model_path=self.model_path)


def reference_cases(models_dirs: tuple[Path, ...] = (REFERENCE_DIR, EXPERIMENTAL_DIR)) -> list[Case]:
    """Every committed model (reference and experimental), as shipped (int8) and its fp32 original."""
    cases = []
    found = (p.parent for d in models_dirs for p in d.glob("*/manifest.json"))
    for model_dir in sorted(found):
        manifest, int8_path = load_manifest(model_dir)
        cases.append(Case(f"{model_dir.name}/int8", model_dir, int8_path, "int8"))
        fp32 = manifest.quantization.get("fp32_file")
        if fp32:
            cases.append(Case(f"{model_dir.name}/fp32", model_dir, model_dir / fp32, "fp32"))
    return cases


def toolchain_cases(models_dir: Path) -> list[Case]:
    """The int8 models ``write_toolchain_models`` made (``models_dir/<name>/``)."""
    return [
        Case(f"toolchain/{d.name}", d, d / "model.onnx", "int8")
        for d in sorted(p.parent for p in models_dir.glob("*/manifest.json"))
    ]


def clip_frames(count: int = 4) -> list[np.ndarray]:
    """Evenly spaced frames of the real clip (BGR)."""
    cap = cv2.VideoCapture(str(CLIP))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    frames = []
    for index in np.linspace(0, total - 1, count, dtype=int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            frames.append(frame)
    cap.release()
    if len(frames) != count:
        raise RuntimeError(f"read {len(frames)} of {count} frames from {CLIP}")
    return frames


def rendered_frames(count: int = 4) -> list[np.ndarray]:
    """Rendered street frames with people, cars and bicycles: what the reference models detect."""
    from synthetic_world import SyntheticVideo

    video = SyntheticVideo(seed=2601, width=320, height=192, fps=10.0, duration_s=8.0, scene="street")
    return [video[int(i)].image for i in np.linspace(10, len(video) - 1, count)]


def inputs_for(model_dir: Path, manifest: ModelManifest, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The stored golden input (when there is one), then each frame through the model's preprocessing."""
    tensors = []
    golden = model_dir / (manifest.golden.file if manifest.golden else "golden.npz")
    if golden.exists():
        tensors.append(np.load(golden)["input_0"])
    tensors += [preprocess(frame, manifest.input)[0] for frame in frames]
    return tensors


def detections_json(runtime: ModelRuntime, outputs: list[np.ndarray]) -> str:
    """Decoded detections in input pixels (the letterbox of an input-sized image is the identity)."""
    spec = runtime.manifest.input
    blank = np.zeros((spec.height, spec.width, 3), np.uint8)
    _, lb = preprocess(blank, spec)
    found = runtime.decode(outputs, lb, (spec.height, spec.width))
    return json.dumps([[d.label, float(d.score), [float(v) for v in d.box]] for d in found])


def run_case(case: Case, tensors: list[np.ndarray]) -> dict[str, np.ndarray]:
    runtime = case.runtime()
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(tensors):
        outputs = runtime.infer(tensor)
        arrays[f"{case.key}|{i}|input"] = tensor
        for j, out in enumerate(outputs):
            arrays[f"{case.key}|{i}|output_{j}"] = out
        arrays[f"{case.key}|{i}|detections"] = np.array(detections_json(runtime, outputs))
    return arrays


def write_toolchain_models(out: Path, frames: list[np.ndarray]) -> list[Path]:
    """Quantize the reference fp32 fomo-street with the toolchain, reduce_range off and on."""
    from firmware_models.quantize import quantize_model
    from shared.manifest import sha256_file

    base = REFERENCE_DIR / TOOLCHAIN_BASE
    manifest, _ = load_manifest(base)
    made = []
    for reduce_range in (False, True):
        target = out / f"{TOOLCHAIN_BASE}-rr{int(reduce_range)}"
        target.mkdir(parents=True, exist_ok=True)
        model = target / "model.onnx"
        facts = quantize_model(base / manifest.quantization["fp32_file"], model, manifest, frames,
                               progress=False, calibration_source="tests/data + rendered",
                               reduce_range=reduce_range)
        data = json.loads((base / "manifest.json").read_text())
        data.update(sha256=sha256_file(model), size_bytes=model.stat().st_size, quantization=facts)
        data.pop("golden", None)
        (target / "manifest.json").write_text(json.dumps(data, indent=2))
        made.append(target)
    return made


def write_reference(out: Path, toolchain: bool) -> Path:
    """Compute everything on this machine and write ``out/reference.npz`` (and ``out/models/``)."""
    out.mkdir(parents=True, exist_ok=True)
    frames = clip_frames() + rendered_frames()
    cases = reference_cases()
    if toolchain:
        models = out / "models"
        shutil.rmtree(models, ignore_errors=True)
        write_toolchain_models(models, frames)
        cases += toolchain_cases(models)
    arrays: dict[str, np.ndarray] = {}
    for case in cases:
        manifest, _ = load_manifest(case.model_dir)
        arrays.update(run_case(case, inputs_for(case.model_dir, manifest, frames)))
    path = out / "reference.npz"
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="x86 reference outputs for the arm64 golden test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--toolchain", action="store_true", help="also quantize models with the toolchain")
    args = parser.parse_args(argv)
    path = write_reference(args.out, args.toolchain)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
