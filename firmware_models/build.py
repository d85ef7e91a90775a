"""Build one reference model end to end: render → train → export → quantize → tune → evaluate → commit files.

Output directory layout (``firmware_models/reference/<name>/``): ``model.onnx`` (int8, what devices run),
``model.fp32.onnx`` (for the fp32-vs-int8 comparison), ``manifest.json``, ``golden.npz``, ``eval.json``,
``eval.png``. The model card goes to ``docs/models/<name>.md``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.manifest import DecoderSpec, DecoderType, ModelManifest, OutputSpec

from .card import write_card
from .data import classifier_dataset, fomo_dataset
from .evaluate import EvalSet, compare, eval_set, predict, tune_grouping, tune_threshold, write_report
from .golden import write_golden
from .quantize import quantize_model
from .reference import ReferenceModel
from .release import release_manifest

log = logging.getLogger(__name__)
DOCS_DIR = Path(__file__).resolve().parents[1] / "docs" / "models"


def seeds(ref: ReferenceModel) -> dict[str, int]:
    """Disjoint seeds per split: a held-out frame is never a training frame."""
    base = ref.seed * 1000
    return {"train": base + 1, "val": base + 2, "test": base + 3, "calib": base + 4, "golden": base + 5}


def base_manifest(ref: ReferenceModel, threshold: float = 0.5) -> ModelManifest:
    if ref.kind == "classifier":
        outputs = (OutputSpec(name="logits", shape=(1, len(ref.labels))),)
        decoder = DecoderSpec(
            type=DecoderType.CLASSIFIER, score_threshold=threshold, background_index=0, apply_softmax=True
        )
        task = "classification"
    else:
        grid = (ref.input.height // ref.stride, ref.input.width // ref.stride)
        outputs = (OutputSpec(name="probs", shape=(1, len(ref.labels), *grid)),)
        decoder = DecoderSpec(
            type=DecoderType.FOMO,
            score_threshold=threshold,
            background_index=0,
            apply_softmax=False,
            params={"stride": ref.stride, "grid": list(grid), "layout": "NCHW"},
        )
        task = "detection"
    return ModelManifest(
        name=ref.name,
        version=ref.version,
        task=task,
        description=ref.description,
        input=ref.input,
        outputs=outputs,
        decoder=decoder,
        labels=ref.labels,
        precision="int8",
    )


def training_data(ref: ReferenceModel, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    if ref.kind == "classifier":
        return classifier_dataset(seed, count, ref.input.height, ref.labels)
    x, y, _ = fomo_dataset(seed, count, ref.input, ref.labels, ref.stride)
    return x, y


def build(
    ref: ReferenceModel,
    out_dir: Path | None = None,
    docs_dir: Path | None = None,
    progress: bool = True,
    latency_runs: int = 300,
    net: Any = None,
) -> dict[str, Any]:
    """Rebuild ``ref`` from nothing (or from a trained ``net``); returns the evaluation report."""
    from .export import export_onnx
    from .train import train

    out_dir = Path(out_dir or ref.directory)
    docs_dir = Path(docs_dir or DOCS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = seeds(ref)
    timings: dict[str, float] = {}
    if net is None:
        t0 = time.perf_counter()
        x, y = training_data(ref, s["train"], ref.train_count)
        timings["render_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        net = train(ref, x, y, progress=progress)
        timings["train_s"] = time.perf_counter() - t0
        del x, y

    manifest = base_manifest(ref)
    fp32_path, int8_path = out_dir / "model.fp32.onnx", out_dir / "model.onnx"
    export_onnx(net, manifest, fp32_path)

    t0 = time.perf_counter()
    calib_frames = _calibration_frames(ref, s["calib"])
    quant = quantize_model(
        fp32_path,
        int8_path,
        manifest,
        calib_frames,
        progress=progress,
        calibration_source=f"rendered (seed {s['calib']})",
    )
    timings["quantize_s"] = time.perf_counter() - t0

    return finish(ref, manifest, fp32_path, int8_path, quant, docs_dir, latency_runs, timings)


def finish(
    ref: ReferenceModel,
    manifest: ModelManifest,
    fp32_path: Path,
    int8_path: Path,
    quant: dict[str, Any],
    docs_dir: Path | None = None,
    latency_runs: int = 300,
    timings: dict[str, float] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """From quantized files to a release: tune the decoder on validation frames, evaluate on held-out
    frames, write golden outputs, manifest, report and card. Returns the evaluation report."""
    out_dir = int8_path.parent
    docs_dir = Path(docs_dir or DOCS_DIR)
    s = seeds(ref)
    timings = dict(timings or {})
    val = eval_set(manifest, count=ref.val_count, seed=s["val"])
    if ref.kind == "fomo":
        val_outputs = predict(int8_path, manifest, val.frames, "tune")
        threshold, val_metric = tune_threshold(manifest, val_outputs, val)
        log.info("tuned score_threshold %.2f (validation centroid F1 %.4f)", threshold, val_metric)
        decoder = manifest.decoder.model_copy(update={"score_threshold": threshold})
        manifest = manifest.model_copy(update={"decoder": decoder})
        params = {**manifest.decoder.params, **tune_grouping(manifest, val_outputs, val)}
        manifest = manifest.model_copy(update={"decoder": decoder.model_copy(update={"params": params})})
    _refresh_metadata(manifest, fp32_path, int8_path)

    t0 = time.perf_counter()
    test = eval_set(manifest, count=ref.test_count, seed=s["test"])
    report = compare(fp32_path, int8_path, manifest, test, runs=latency_runs)
    timings["evaluate_s"] = time.perf_counter() - t0
    report["build"] = {k: round(v, 1) for k, v in timings.items()}
    report["build"].update({"train_samples": ref.train_count, "epochs": ref.epochs, "seeds": s})
    report["build"].update(provenance or {})
    write_report(report, out_dir / "eval.json", out_dir / "eval.png")

    # Tolerance for other CPUs' int8 kernels (rounding can differ by one step): logits vs probabilities.
    atol = 0.5 if ref.kind == "classifier" else 0.1
    golden = write_golden(int8_path, manifest, _golden_frame(ref, test), atol=atol)
    metrics = {
        report["metric"]: report["int8"]["metric"],
        f"fp32_{report['metric']}": report["fp32"]["metric"],
        "per_class": report["int8"]["per_class"],
        "heldout": report["data"],
        "int8_p50_ms": report["int8"]["p50_ms"],
        "fp32_p50_ms": report["fp32"]["p50_ms"],
    }
    manifest = release_manifest(manifest, int8_path, fp32_path, golden, metrics, quant)
    (out_dir / "manifest.json").write_text(manifest.to_json())
    write_card(manifest, report, docs_dir / f"{ref.name}.md")
    return report


def retune(ref: ReferenceModel, out_dir: Path | None = None, docs_dir: Path | None = None) -> dict[str, Any]:
    """A decoder-only release of a built reference model: the same trained, quantized weights, the
    decoder re-tuned and everything re-evaluated under ``ref.version`` (no training, minutes not hours)."""
    out_dir = Path(out_dir or ref.directory)
    old = ModelManifest.model_validate_json((out_dir / "manifest.json").read_text())
    if old.version == ref.version:
        raise ValueError(f"{ref.name} is already {ref.version}: bump the version for new decoder settings")
    quant = {k: v for k, v in old.quantization.items() if not k.startswith("fp32_")}
    fp32_path = out_dir / old.quantization.get("fp32_file", "model.fp32.onnx")
    provenance = {"retuned_from": old.version, "weights_sha256": old.quantization.get("fp32_sha256")}
    return finish(
        ref, base_manifest(ref), fp32_path, out_dir / old.file, quant, docs_dir, provenance=provenance
    )


def _refresh_metadata(manifest: ModelManifest, *paths: Path) -> None:
    """Re-stamp metadata_props after tuning (the threshold lives in the decoder block)."""
    import onnx

    from .onnx_meta import manifest_props, set_props

    for path in paths:
        model = onnx.load(str(path))
        set_props(model, manifest_props(manifest))
        onnx.save(model, str(path))


def _calibration_frames(ref: ReferenceModel, seed: int) -> list[np.ndarray]:
    from .calibration import load_frames

    return load_frames(
        "rendered", ref.calibration_count, seed=seed, crops=ref.kind == "classifier", crop_labels=ref.labels
    )


def _golden_frame(ref: ReferenceModel, test: EvalSet) -> np.ndarray:
    """A held-out sample that shows something (an object crop, or a frame with objects)."""
    if test.truths is not None:
        best = max(range(len(test.frames)), key=lambda i: sum(o.visible >= 0.8 for o in test.truths[i]))
        return test.frames[best]
    assert test.classes is not None
    return (
        test.frames[int(np.nonzero(test.classes == 1)[0][0])] if (test.classes == 1).any() else test.frames[0]
    )


def build_all(
    names: list[str] | None = None,
    smoke: bool = False,
    out_root: Path | None = None,
    docs_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    from .distil import STUDENT_MODELS
    from .reference import REFERENCE_MODELS

    started = time.perf_counter()
    results = {}
    # A student's smoke build still labels all six real clips with the teacher (~40 s): only on request.
    default = list(REFERENCE_MODELS) if smoke else [*REFERENCE_MODELS, *STUDENT_MODELS]
    for name in names or default:
        if name in STUDENT_MODELS:  # distilled from a real teacher on real clips (needs ../shared)
            from .student_build import build_reference_student

            spec = STUDENT_MODELS[name].smoke() if smoke else STUDENT_MODELS[name]
            out_dir = (out_root / name) if out_root else None
            report = build_reference_student(spec, out_dir, docs_dir, progress=progress)
            results[name] = {"train_f1_int8": report["train_f1"]["int8"]["value"]}
            continue
        ref = REFERENCE_MODELS[name]
        if smoke:
            ref = ref.smoke()
        out_dir = (out_root / name) if out_root else None
        report = build(ref, out_dir, docs_dir, progress=progress, latency_runs=20 if smoke else 300)
        results[name] = {k: report[k] for k in ("metric", "goals")} | {
            "fp32": report["fp32"]["metric"],
            "int8": report["int8"]["metric"],
        }
        log.info("%s: %s", name, json.dumps(results[name]))
    return {"models": results, "wall_s": round(time.perf_counter() - started, 1)}
