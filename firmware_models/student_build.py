"""Build a distilled student end to end: teacher labels → distil → export → int8 → tune → files.

``build_student`` is what ``make models`` runs for ``fomo-real`` (all six clips) and what
``benchmarks.realworld`` runs once per fold (every clip but the held-out one). The decoder threshold is
tuned on the training frames only (never on a held-out clip). Needs ``../shared`` (teacher and clips).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.manifest import DecoderSpec, DecoderType, ModelManifest, OutputSpec, sha256_file

from .distil import StudentSpec, distil
from .evaluate import detections, latency_ms, predict
from .golden import write_golden
from .label import Frame, label, load_dataset
from .quantize import quantize_model
from .release import release_manifest
from .teacher_metric import teacher_f1
from .teachers import TEACHERS, teachers_dir, video_dir

log = logging.getLogger(__name__)
THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.2, 0.91, 0.05), 2))
GROUPINGS: tuple[dict[str, Any], ...] = (
    {},
    {"connectivity": 4},
    {"merge_gap": [1, 1]},
    {"merge_gap": [2, 2]},
)
DEFAULT_TEACHER = "yolox-nano"


def student_manifest(spec: StudentSpec, threshold: float = 0.5, params: dict | None = None) -> ModelManifest:
    gh, gw = spec.grid
    return ModelManifest(
        name=spec.name,
        version=spec.version,
        task="detection",
        description=spec.description,
        input=spec.input,
        outputs=(OutputSpec(name="probs", shape=(1, len(spec.labels), gh, gw)),),
        decoder=DecoderSpec(
            type=DecoderType.FOMO,
            score_threshold=threshold,
            background_index=0,
            apply_softmax=False,
            params={"stride": spec.stride, "grid": [gh, gw], "layout": "NCHW", **(params or {})},
        ),
        labels=spec.labels,
        precision="int8",
    )


def teacher_dataset(out: Path, progress: bool = True, teacher: str = DEFAULT_TEACHER) -> Path:
    """The six clips labelled by the teacher (kept in ``out`` and reused while the teacher is the same)."""
    path = teachers_dir() / TEACHERS[teacher]
    file = out / "annotations.json"
    if file.exists():
        info = json.loads(file.read_text()).get("info", {})
        if info.get("source_sha256") == sha256_file(path):
            return out
    label(path, [video_dir()], out, progress=progress)
    data = json.loads(file.read_text())
    data["info"]["source_sha256"] = sha256_file(path)
    file.write_text(json.dumps(data, indent=1))
    return out


def images_of(frames: Sequence[Frame]) -> list[np.ndarray]:
    return [f.image() for f in frames]


def scored_labels(frames: Sequence[Frame], spec: StudentSpec) -> list[str]:
    """The student's labels the teacher found surely somewhere in ``frames`` (only those are scored)."""
    found = {b[0] for f in frames for b in f.boxes if b[1] >= 0.5}
    return [lb for lb in spec.labels[1:] if lb in found]


def evaluate_on(
    model: Path, manifest: ModelManifest, frames: Sequence[Frame], images: list[np.ndarray], labels: list[str]
) -> dict[str, Any]:
    outs = predict(model, manifest, images, f"infer {model.name}")
    dets = detections(outs, manifest, images)
    boxes = [f.boxes for f in frames]
    grid = tuple(manifest.decoder.params["grid"])
    return {
        "f1": teacher_f1(dets, boxes, labels, grid),
        "f1_strict": teacher_f1(dets, boxes, labels, grid, strict=True),
        "detections": dets,
    }


def tune(
    model: Path, manifest: ModelManifest, frames: Sequence[Frame], images: list[np.ndarray], labels: list[str]
) -> tuple[float, dict, float]:
    """Threshold and grouping with the best macro F1 on the *training* frames."""
    outs = predict(model, manifest, images, "tune")
    grid = tuple(manifest.decoder.params["grid"])
    boxes = [f.boxes for f in frames]
    best = (-1.0, 0.5, {})
    for grouping in GROUPINGS:
        params = {k: {lb: v for lb in manifest.labels[1:]} for k, v in grouping.items()}
        trial = student_manifest_like(manifest, params)
        for thr in THRESHOLDS:
            value = teacher_f1(detections(outs, trial, images, thr), boxes, labels, grid)["value"]
            if value > best[0] + 1e-9:
                best = (value, thr, params)
    return best[1], best[2], best[0]


def student_manifest_like(manifest: ModelManifest, params: dict) -> ModelManifest:
    merged = {k: v for k, v in manifest.decoder.params.items() if k not in ("connectivity", "merge_gap")}
    return manifest.model_copy(
        update={"decoder": manifest.decoder.model_copy(update={"params": {**merged, **params}})}
    )


def build_student(
    spec: StudentSpec,
    dataset: Path,
    out_dir: Path,
    cache: Path | None = None,
    holdout: str | None = None,
    progress: bool = True,
    latency_runs: int = 300,
) -> dict[str, Any]:
    """Distil ``spec`` on every clip of ``dataset`` except ``holdout``; quantize, tune on the training
    frames, write model.onnx, model.fp32.onnx, manifest.json, golden.npz, eval.json into ``out_dir``."""
    t0 = time.perf_counter()
    frames, _, info = load_dataset(dataset)
    train = [f for f in frames if f.clip != holdout]
    net = distil(spec, train, cache, progress)
    train_s = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = student_manifest(spec)
    fp32, int8 = out_dir / "model.fp32.onnx", out_dir / "model.onnx"
    from .export import export_onnx

    export_onnx(net, manifest, fp32)
    # calibration: training frames spread over the clips (the odd ones, so tuning frames differ)
    pick = [train[int(i)] for i in np.linspace(0, len(train) - 1, spec.calibration_count)]
    quant = quantize_model(
        fp32, int8, manifest, images_of(pick), progress=progress,
        calibration_source="teacher-labelled real training frames",
    )  # fmt: skip
    # tune on (at most 400) training frames, every clip represented
    tune_frames = _spread(train, 400)
    tune_images = images_of(tune_frames)
    labels = scored_labels(tune_frames, spec)
    threshold, params, tuned_f1 = tune(int8, manifest, tune_frames, tune_images, labels)
    manifest = student_manifest(spec, threshold, params)
    _stamp(manifest, fp32, int8)
    fp32_eval = evaluate_on(fp32, manifest, tune_frames, tune_images, labels)
    int8_eval = evaluate_on(int8, manifest, tune_frames, tune_images, labels)
    lat32, lat8 = latency_ms([fp32, int8], manifest, tune_images[0], latency_runs)
    report = {
        "name": spec.name,
        "version": spec.version,
        "holdout": holdout,
        "teacher": info.get("teacher"),
        "train_clips": sorted({f.clip for f in train}),
        "train_frames": len(train),
        "score_threshold": threshold,
        "grouping": params,
        "tuned_on": f"{len(tune_frames)} training frames (in-sample)",
        "train_f1": {"int8": int8_eval["f1"], "fp32": fp32_eval["f1"], "int8_strict": int8_eval["f1_strict"]},
        "tuned_f1": tuned_f1,
        "bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
        "fp32": lat32,
        "int8": lat8,
        "build_s": round(time.perf_counter() - t0, 1),
        "train_s": round(train_s, 1),
        "spec": {k: v for k, v in spec.__dict__.items() if k not in ("input", "description")},
    }
    golden_frame = max(range(len(tune_frames)), key=lambda i: len(tune_frames[i].boxes))
    golden = write_golden(int8, manifest, tune_images[golden_frame], atol=0.1)
    metrics = {
        "teacher_centroid_f1_train": int8_eval["f1"]["value"],
        "fp32_teacher_centroid_f1_train": fp32_eval["f1"]["value"],
        "int8_p50_ms": lat8["p50_ms"],
        "fp32_p50_ms": lat32["p50_ms"],
    }
    manifest = release_manifest(manifest, int8, fp32, golden, metrics, quant)
    (out_dir / "manifest.json").write_text(manifest.to_json())
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2))
    return report


def build_reference_student(
    spec: StudentSpec, out_dir: Path | None = None, docs_dir: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """``make models`` for a distilled student: the six clips labelled by the teacher (cached in
    build/distil), distilled on all of them, files in firmware_models/experimental/<name>, card in docs."""
    from . import EXPERIMENTAL_DIR
    from .student_card import write_student_card

    repo = Path(__file__).resolve().parents[1]
    cache = repo / "build" / "distil"
    dataset = teacher_dataset(cache / "dataset", progress)
    out_dir = Path(out_dir or EXPERIMENTAL_DIR / spec.name)
    report = build_student(spec, dataset, out_dir, cache, progress=progress)
    write_student_card(out_dir, Path(docs_dir or repo / "docs" / "models") / f"{spec.name}.md")
    return report


def _spread(frames: Sequence[Frame], count: int) -> list[Frame]:
    """Up to ``count`` frames, the same share from each clip (all of a short clip)."""
    clips = sorted({f.clip for f in frames})
    share = max(1, count // max(len(clips), 1))
    out: list[Frame] = []
    for clip in clips:
        mine = [f for f in frames if f.clip == clip]
        out += [
            mine[int(i)] for i in np.unique(np.linspace(0, len(mine) - 1, min(share, len(mine))).astype(int))
        ]
    return out


def _stamp(manifest: ModelManifest, *paths: Path) -> None:
    import onnx

    from .onnx_meta import manifest_props, set_props

    for path in paths:
        model = onnx.load(str(path))
        set_props(model, manifest_props(manifest))
        onnx.save(model, str(path))
