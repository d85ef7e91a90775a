"""fp32 vs int8 on the same held-out set: metric, file size, single-thread latency p50/p99, JSON + PNG."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from model_runtime import Detection, ModelRuntime, SessionSettings
from model_runtime.decoders import class_probabilities, decode, named
from model_runtime.preprocessing import letterbox_of, prepare
from model_runtime.session import PrecisionMode
from shared.manifest import DecoderType, ModelManifest
from synthetic_world import TruthObject, crop_samples, still_samples

from .calibration import RENDERED, load_frames
from .metrics import accuracy, box_f1, centroid_f1

log = logging.getLogger(__name__)

METRIC_NAMES = {
    DecoderType.CLASSIFIER: "accuracy",
    DecoderType.FOMO: "centroid_f1",
    DecoderType.SSD: "box_f1@iou0.5",
    DecoderType.YOLO: "box_f1@iou0.5",
    DecoderType.GFL: "box_f1@iou0.5",
}


@dataclass
class EvalSet:
    """Frames plus whatever truth exists: crop classes, object lists, or nothing (agreement mode)."""

    frames: list[np.ndarray]
    source: str
    classes: np.ndarray | None = None
    truths: list[list[TruthObject]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_truth(self) -> bool:
        return self.classes is not None or self.truths is not None


def eval_set(manifest: ModelManifest, source: str = RENDERED, count: int = 500, seed: int = 3) -> EvalSet:
    """The held-out set: rendered with truth (seeded), or a folder/video without truth (agreement mode)."""
    if source != RENDERED:
        return EvalSet(load_frames(source, count), source)
    if manifest.decoder.type == DecoderType.CLASSIFIER:
        per_class = max(1, -(-count // len(manifest.labels)))
        x, y = crop_samples(seed, per_class, size=manifest.input.height, labels=manifest.labels)
        return EvalSet(list(x), f"rendered crops (seed {seed})", classes=y)
    frames, truths = [], []
    for image, objects in tqdm(still_samples(seed, count), total=count, desc="render held-out", leave=False):
        frames.append(image)
        truths.append(objects)
    return EvalSet(frames, f"rendered frames (seed {seed})", truths=truths)


def runtime_for(
    path: str | Path, manifest: ModelManifest, threads: int = 1, precision: PrecisionMode = "auto"
) -> ModelRuntime:
    """The model runtime the agent uses, on ``path`` with ``manifest`` (the file need not match it yet)."""
    settings = SessionSettings(threads=threads, precision=precision)
    return ModelRuntime(Path(path).parent, settings, manifest=manifest, model_path=path)


def session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """A bare CPU session with the runtime's settings (for graph-level checks that need no manifest)."""
    from model_runtime.session import open_session

    return open_session(path, SessionSettings(threads=threads))


def predict(
    path: str | Path, manifest: ModelManifest, frames: list[np.ndarray], desc: str = "infer"
) -> list[list[np.ndarray]]:
    """Raw outputs per frame, in the manifest's output order."""
    rt = runtime_for(path, manifest)
    return [rt.infer(prepare(f, manifest.input)) for f in tqdm(frames, desc=desc, leave=False)]


def with_threshold(manifest: ModelManifest, threshold: float | None) -> ModelManifest:
    if threshold is None:
        return manifest
    return manifest.model_copy(
        update={"decoder": manifest.decoder.model_copy(update={"score_threshold": threshold})}
    )


def detections(
    outputs: list[list[np.ndarray]],
    manifest: ModelManifest,
    frames: list[np.ndarray],
    threshold: float | None = None,
) -> list[list[Detection]]:
    """The runtime's decode, exactly as the agent runs it (boxes normalised to each frame)."""
    m = with_threshold(manifest, threshold)
    return [
        decode(named(o, m), m, letterbox_of(f.shape, m.input), f.shape[:2])
        for o, f in zip(outputs, frames, strict=True)
    ]


def metric_labels(manifest: ModelManifest) -> tuple[str, ...]:
    """The labels detections carry: the model's, or the rule names its label map gives them."""
    if manifest.label_map is None:
        return manifest.labels
    names = manifest.label_map.names
    keep = [names.get(x, None if manifest.label_map.drop_unmapped else x) for x in manifest.labels]
    return tuple(dict.fromkeys(x for x in keep if x))


def grid_of(manifest: ModelManifest, outputs: list[list[np.ndarray]]) -> tuple[int, int]:
    shape = outputs[0][0].shape
    return (shape[1], shape[2]) if manifest.decoder.params.get("layout") == "NHWC" else (shape[2], shape[3])


def score(
    manifest: ModelManifest,
    outputs: list[list[np.ndarray]],
    data: EvalSet,
    threshold: float | None = None,
    reference: list[list[np.ndarray]] | None = None,
    band: float = 0.0,
) -> dict[str, Any]:
    """The metric of ``outputs`` against truth, or (no truth) against ``reference`` outputs (agreement).

    In agreement mode ``band`` makes reference detections scored within ``band`` of the threshold
    "don't care" (like barely visible truth): a box fp32 scores 0.31 and int8 0.29 at threshold 0.3
    is neither a miss nor a false alarm; every box clear of the band must match."""
    kind = manifest.decoder.type
    if kind == DecoderType.CLASSIFIER:

        def best(o: list[np.ndarray]) -> int:
            return int(np.argmax(class_probabilities(named(o, manifest), manifest)))

        predicted = np.array([best(o) for o in outputs])
        expected = data.classes if data.has_truth else np.array([best(o) for o in reference or outputs])
        result = accuracy(predicted, expected)
        result["per_class"] = {manifest.labels[k]: v for k, v in result["per_class"].items()}
        return result
    dets = detections(outputs, manifest, data.frames, threshold)
    truths = data.truths
    if truths is None:
        thr = manifest.decoder.score_threshold if threshold is None else threshold
        ref = detections(reference or outputs, manifest, data.frames, max(0.0, thr - band))
        truths = [
            [
                TruthObject(i, d.label, d.bbox, d.centroid, 1.0 if d.score >= thr + band else 0.0)
                for i, d in enumerate(frame)
            ]
            for frame in ref
        ]
    labels = metric_labels(manifest)
    background = manifest.decoder.background_index if manifest.label_map is None else None
    if kind == DecoderType.FOMO:
        return centroid_f1(dets, truths, labels, grid_of(manifest, outputs), background)
    return box_f1(dets, truths, labels, background=background)


def tune_threshold(
    manifest: ModelManifest,
    outputs: list[list[np.ndarray]],
    data: EvalSet,
    candidates: tuple[float, ...] = tuple(np.round(np.arange(0.2, 0.96, 0.05), 2)),
) -> tuple[float, float]:
    """Score threshold with the best metric on a validation set; returns (threshold, metric)."""
    best = max(
        ((float(thr), score(manifest, outputs, data, thr)["value"]) for thr in candidates),
        key=lambda p: (p[1], -abs(p[0] - 0.5)),
    )
    return best


# How a FOMO label's lit cells may be grouped into objects besides the default (8-connected, as is):
# 4-connected (diagonal neighbours are two objects), or joined across gaps of a closing radius
# (columns, rows) first (a long object lit as two blobs is one).
GROUPING_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"connectivity": 4},
    *(
        {"merge_gap": [gx, gy]}
        for gx, gy in ((1, 0), (2, 0), (3, 0), (4, 0), (1, 1), (2, 1), (3, 1), (4, 1), (6, 1), (8, 1))
    ),
)
# A label leaves the default grouping only when that raises its centroid F1 by this much. Both are
# scored on the same ~3,000 validation frames: a paired comparison, far less noisy than two samples.
GROUPING_MIN_GAIN = 0.002


def tune_grouping(
    manifest: ModelManifest,
    outputs: list[list[np.ndarray]],
    data: EvalSet,
    candidates: tuple[dict[str, Any], ...] = GROUPING_CANDIDATES,
    min_gain: float = GROUPING_MIN_GAIN,
) -> dict[str, dict[str, Any]]:
    """FOMO decoder ``params`` per label (``connectivity`` and ``merge_gap``, each {label: value}): the
    candidate with the best centroid F1 of that label on a validation set, kept only where it beats
    the default grouping by ``min_gain``. Labels are matched independently, so one scoring per
    candidate (applied to every label at once) gives every label's F1."""

    def per_class(option: dict[str, Any]) -> dict[str, float]:
        params = dict(manifest.decoder.params)
        for key, value in option.items():
            params[key] = {label: value for label in manifest.labels}
        trial = manifest.model_copy(
            update={"decoder": manifest.decoder.model_copy(update={"params": params})}
        )
        return {label: v["f1"] for label, v in score(trial, outputs, data)["per_class"].items()}

    plain = per_class({})
    trials = [(option, per_class(option)) for option in candidates]
    chosen: dict[str, dict[str, Any]] = {}
    for label, base in plain.items():
        option, f1 = max(trials, key=lambda trial: trial[1][label])  # ties: the earlier candidate
        if f1[label] >= base + min_gain:
            for key, value in option.items():
                chosen.setdefault(key, {})[label] = value
            log.info("grouping %s: %s (centroid F1 %.4f -> %.4f)", label, option, base, f1[label])
    return chosen


def latency_ms(
    paths: list[str | Path],
    manifest: ModelManifest,
    frame: np.ndarray,
    runs: int = 300,
    warmup: int = 30,
    rounds: int = 10,
    precision: PrecisionMode = "auto",
) -> list[dict[str, float]]:
    """Single-threaded wall time of one inference per model: p50 and p99 over ``runs`` after ``warmup``.

    The models take turns in ``rounds`` blocks (the order alternating), so a change in the machine's
    speed while measuring (a noisy neighbour, frequency scaling) hits all of them alike instead of
    whichever was timed last: one block each made the same int8 model 0.63x or 1.1x its fp32 twin from
    one run to the next on a shared VM. Blocks, not single inferences: alternating every inference
    evicts each model's weights from the cache and times a cold start.
    """
    tensor = prepare(frame, manifest.input)
    sessions = [runtime_for(path, manifest, 1, precision).session for path in paths]
    feeds = [{manifest.input.name: tensor} for _ in sessions]
    for sess, feed in zip(sessions, feeds, strict=True):
        for _ in range(warmup):
            sess.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    order = list(range(len(sessions)))
    for r in range(rounds):
        block = runs // rounds + (1 if r < runs % rounds else 0)
        for k in order:
            for _ in range(warmup // rounds):  # back in cache after the other model's turn
                sessions[k].run(None, feeds[k])
            for _ in range(block):
                t0 = time.perf_counter()
                sessions[k].run(None, feeds[k])
                times[k].append((time.perf_counter() - t0) * 1000.0)
        order.reverse()
    return [
        {"p50_ms": round(float(np.percentile(t, 50)), 4), "p99_ms": round(float(np.percentile(t, 99)), 4)}
        for t in times
    ]


def compare(
    fp32_path: str | Path, int8_path: str | Path, manifest: ModelManifest, data: EvalSet, runs: int = 300
) -> dict[str, Any]:
    """The fp32-vs-int8 report for one model on one held-out set."""
    out32 = predict(fp32_path, manifest, data.frames, "infer fp32")
    out8 = predict(int8_path, manifest, data.frames, "infer int8")
    m32 = score(manifest, out32, data)
    m8 = score(manifest, out8, data, reference=out32)
    if not data.has_truth:
        m32 = {"value": 1.0, "per_class": {}, "note": "reference for agreement"}
    sizes = {"fp32": Path(fp32_path).stat().st_size, "int8": Path(int8_path).stat().st_size}
    lat32, lat8 = latency_ms([fp32_path, int8_path], manifest, data.frames[0], runs)
    metric = METRIC_NAMES[manifest.decoder.type] if data.has_truth else "agreement_with_fp32"
    report = {
        "name": manifest.name,
        "version": manifest.version,
        "decoder": manifest.decoder.type.value,
        "metric": metric,
        "score_threshold": manifest.decoder.score_threshold,
        "data": {"source": data.source, "samples": len(data.frames)},
        "fp32": {"metric": m32["value"], "per_class": m32["per_class"], "bytes": sizes["fp32"], **lat32},
        "int8": {"metric": m8["value"], "per_class": m8["per_class"], "bytes": sizes["int8"], **lat8},
        "threads": 1,
        "onnxruntime": ort.__version__,
    }
    report["goals"] = {
        "metric_drop_le_0.01": bool(m32["value"] - m8["value"] <= 0.01),
        "int8_p50_le_0.7x": bool(lat8["p50_ms"] <= 0.7 * lat32["p50_ms"]),
        "int8_bytes_le_0.3x": bool(sizes["int8"] <= 0.3 * sizes["fp32"]),
    }
    return report


def write_report(report: dict[str, Any], json_path: str | Path, png_path: str | Path | None = None) -> None:
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    if png_path is not None:
        plot(report, png_path)


def plot(report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    colours = ["#4c72b0", "#dd8452"]
    panels = [(report["metric"], "metric"), ("file size (KB)", "bytes"), ("latency ms (p50 / p99)", "p50_ms")]
    for ax, (title, key) in zip(axes, panels, strict=True):
        if key == "p50_ms":
            for i, prec in enumerate(("fp32", "int8")):
                ax.bar(
                    [i * 3, i * 3 + 1],
                    [report[prec]["p50_ms"], report[prec]["p99_ms"]],
                    color=colours[i],
                    label=prec,
                )
            ax.set_xticks([0, 1, 3, 4], ["p50", "p99", "p50", "p99"])
            ax.legend()
        else:
            scale = 1024 if key == "bytes" else 1
            ax.bar(
                ["fp32", "int8"], [report["fp32"][key] / scale, report["int8"][key] / scale], color=colours
            )
        ax.set_title(title)
    fig.suptitle(f"{report['name']} {report['version']}: fp32 vs int8 (1 thread)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
