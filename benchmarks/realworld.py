"""Real footage, leave one clip out: is the distilled student as good as its teacher where it matters?

For each of the clips in ../shared/data/video (intel-iot-devkit/sample-videos, CC BY 4.0) a student is
distilled from the teacher's labels on the *other* clips plus the rendered world (threshold tuned on
those training frames only), quantized to int8, and scored on every frame of the held-out clip:

- centroid F1 per class against the teacher's boxes (``firmware_models.teacher_metric``: boxes the
  teacher scores < 0.5 are "don't care"; car only where the teacher finds cars), int8 and fp32;
- per-frame person counts against the hand counts in ``benchmarks/data/hand_counts/`` (exact-match
  rate), with the teacher's own rate beside it (its person boxes at its own threshold, 0.3);
- int8 p50 vs the teacher's fp32 p50 (1 thread, same run, same CPU) and the int8 file size.

Also scored on the same clips: ``fomo-street`` (the rendered-world default), for comparison.

``python -m benchmarks.realworld --json`` prints one JSON object as its last line. Goals: person F1
≥ 0.80 on average and ≥ 0.65 on every clip; count exact on ≥ 80 % of hand-counted frames; int8 ≤
256 KB; int8 F1 within 0.02 of fp32; int8 p50 ≤ 1/20 of the teacher's fp32 p50. Minutes per fold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from firmware_models.distil import FOMO_REAL, StudentSpec
from firmware_models.evaluate import latency_ms
from firmware_models.label import Frame, load_dataset, load_teacher
from firmware_models.student_build import build_student, evaluate_on, teacher_dataset
from firmware_models.teachers import TEACHERS, teachers_dir
from model_runtime import ModelRuntime
from shared.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
HAND_COUNTS = REPO / "benchmarks" / "data" / "hand_counts"
FOMO_STREET = REPO / "firmware_models" / "reference" / "fomo-street"
TEACHER_COUNT_THRESHOLD = 0.3


def hand_counts(clip: str) -> dict[int, int]:
    path = HAND_COUNTS / f"{clip}.json"
    if not path.exists():
        return {}
    return {int(f["frame"]): int(f["persons"]) for f in json.loads(path.read_text())["frames"]}


def count_rate(counts: dict[int, int], per_frame: dict[int, int]) -> dict[str, Any]:
    frames = [n for n in counts if n in per_frame]
    exact = sum(per_frame[n] == counts[n] for n in frames)
    return {"frames": len(frames), "exact": exact, "rate": round(exact / max(len(frames), 1), 4)}


def persons(dets) -> int:
    return sum(d.label == "person" for d in dets)


def score_model(
    model_dir: Path, frames: list[Frame], images: list[np.ndarray], labels: list[str], counts: dict[int, int]
) -> dict[str, Any]:
    manifest, path = load_manifest(model_dir, verify_file=False)
    ev = evaluate_on(path, manifest, frames, images, labels)
    per_frame = {f.index: persons(d) for f, d in zip(frames, ev["detections"], strict=True)}
    return {"f1": ev["f1"], "f1_strict": ev["f1_strict"], "count": count_rate(counts, per_frame)}


def street_detections(frames: list[Frame], images: list[np.ndarray], labels: list[str], counts) -> dict:
    """fomo-street on the same frames (its truck → car, as the student's class map does)."""
    rt = ModelRuntime(FOMO_STREET)
    from firmware_models.teacher_metric import teacher_f1

    dets = []
    for img in images:
        found = rt.detect(img)
        for d in found:
            if d.label == "truck":
                d.label = "car"
        dets.append(found)
    grid = tuple(rt.manifest.decoder.params["grid"])
    boxes = [f.boxes for f in frames]
    per_frame = {f.index: persons(d) for f, d in zip(frames, dets, strict=True)}
    return {
        "f1": teacher_f1(dets, boxes, labels, grid),
        "count": count_rate(counts, per_frame),
    }


def fold(
    spec: StudentSpec, dataset: Path, clip: str, frames: list[Frame], work: Path, cache: Path, progress: bool
) -> dict[str, Any]:
    held = [f for f in frames if f.clip == clip]
    images = [f.image() for f in held]
    found = {b[0] for f in held for b in f.boxes if b[1] >= 0.5}
    labels = [lb for lb in ("person", "car") if lb in found]
    counts = hand_counts(clip)
    build = build_student(spec, dataset, work / clip, cache, holdout=clip, progress=progress, latency_runs=50)
    int8 = score_model(work / clip, held, images, labels or ["person"], counts)
    fp32_dir = work / clip
    manifest, _ = load_manifest(fp32_dir, verify_file=False)
    fp32 = evaluate_on(fp32_dir / "model.fp32.onnx", manifest, held, images, labels or ["person"])
    teacher_counts = {
        f.index: sum(b[0] == "person" and b[1] >= TEACHER_COUNT_THRESHOLD for b in f.boxes) for f in held
    }
    return {
        "clip": clip,
        "frames": len(held),
        "teacher_boxes": {
            lb: sum(b[0] == lb and b[1] >= 0.5 for f in held for b in f.boxes) for lb in labels
        },
        "train_frames": build["train_frames"],
        "threshold": build["score_threshold"],
        "grouping": build["grouping"],
        "train_f1_int8": build["train_f1"]["int8"]["value"],
        "int8": int8,
        "fp32": {"f1": fp32["f1"], "f1_strict": fp32["f1_strict"]},
        "teacher_count": count_rate(counts, teacher_counts),
        "fomo_street": street_detections(held, images, labels or ["person"], counts),
    }


def summary(folds: list[dict[str, Any]], sizes: dict[str, int], lat: dict[str, float]) -> dict[str, Any]:
    def f1(row: dict, key: str, label: str) -> float | None:
        c = (
            row[key]["f1"]["per_class"].get(label)
            if key != "fp32"
            else row["fp32"]["f1"]["per_class"].get(label)
        )
        return c["f1"] if c else None

    person8 = [f1(r, "int8", "person") for r in folds if "person" in r["teacher_boxes"]]
    person32 = [f1(r, "fp32", "person") for r in folds if "person" in r["teacher_boxes"]]
    street = [f1(r, "fomo_street", "person") for r in folds if "person" in r["teacher_boxes"]]
    person8 = [v or 0.0 for v in person8]
    person32 = [v or 0.0 for v in person32]
    street = [v or 0.0 for v in street]

    def pooled(key: str) -> dict[str, Any]:
        frames = sum(r[key]["count"]["frames"] if key != "teacher_count" else r[key]["frames"] for r in folds)
        exact = sum(r[key]["count"]["exact"] if key != "teacher_count" else r[key]["exact"] for r in folds)
        return {"frames": frames, "exact": exact, "rate": round(exact / max(frames, 1), 4)}

    counts = {
        "student_int8": pooled("int8"),
        "teacher": pooled("teacher_count"),
        "fomo_street": pooled("fomo_street"),
    }
    avg8, avg32 = float(np.mean(person8)), float(np.mean(person32))
    return {
        "person_f1_int8": {"mean": round(avg8, 4), "min": round(min(person8), 4)},
        "person_f1_fp32": {"mean": round(avg32, 4), "min": round(min(person32), 4)},
        "person_f1_fomo_street": {"mean": round(float(np.mean(street)), 4), "min": round(min(street), 4)},
        "car_f1_int8": {r["clip"]: f1(r, "int8", "car") for r in folds if "car" in r["teacher_boxes"]},
        "counts": counts,
        "goals": {
            "person_f1_mean_ge_0.80": bool(avg8 >= 0.80),
            "person_f1_every_clip_ge_0.65": bool(min(person8) >= 0.65),
            "count_exact_ge_0.80": bool(counts["student_int8"]["rate"] >= 0.80),
            "int8_le_256KB": bool(sizes["int8"] <= 256 * 1024),
            "int8_f1_within_0.02_of_fp32": bool(
                all(abs(a - b) <= 0.02 for a, b in zip(person8, person32, strict=True))
            ),
            "int8_p50_le_teacher_over_20": bool(
                lat["student_int8_p50_ms"] * 20 <= lat["teacher_fp32_p50_ms"]
            ),
        },
    }


def run(
    spec: StudentSpec, work: Path, cache: Path, clips: list[str] | None, progress: bool, runs: int
) -> dict[str, Any]:
    dataset = teacher_dataset(cache / "dataset", progress)
    frames, _, info = load_dataset(dataset)
    names = clips or sorted({f.clip for f in frames})
    folds = [fold(spec, dataset, clip, frames, work, cache, progress) for clip in names]
    # latency: the student (last fold's int8) and the teacher's fp32, interleaved in one run, 1 thread
    student_manifest, student_path = load_manifest(work / names[-1], verify_file=False)
    teacher = load_teacher(teachers_dir() / TEACHERS["yolox-nano"], cache / "teacher")
    frame = frames[0].image()
    (s8,) = latency_ms([student_path], student_manifest, frame, runs)
    (t32,) = latency_ms([teacher.model_path], teacher.manifest, frame, runs)
    (s8b,) = latency_ms([student_path], student_manifest, frame, runs)
    lat = {
        "student_int8_p50_ms": round(min(s8["p50_ms"], s8b["p50_ms"]), 4),
        "student_int8_p50_ms_runs": [s8["p50_ms"], s8b["p50_ms"]],
        "teacher_fp32_p50_ms": t32["p50_ms"],
        "threads": 1,
    }
    lat["ratio"] = round(lat["teacher_fp32_p50_ms"] / lat["student_int8_p50_ms"], 1)
    sizes = {"int8": (work / names[-1] / "model.onnx").stat().st_size}
    return {
        "teacher": info.get("teacher"),
        "student": {"name": spec.name, "input": list(spec.input.shape), "steps": spec.steps},
        "clips": folds,
        "latency": lat,
        "bytes": sizes,
        "summary": summary(folds, sizes, lat),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.realworld", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line (last line)")
    p.add_argument("--clip", action="append", help="only this held-out clip (repeatable)")
    p.add_argument("--work", help="folder for fold models (default: a temporary folder)")
    p.add_argument(
        "--cache", default=str(REPO / "build" / "distil"), help="teacher labels + pretraining cache"
    )
    p.add_argument("--runs", type=int, default=300, help="timed inferences per model")
    p.add_argument("--smoke", action="store_true", help="a few training steps per fold (tests)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (on stderr)")
    args = p.parse_args(argv)
    spec = FOMO_REAL.smoke() if args.smoke else FOMO_REAL
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        result = run(spec, work, Path(args.cache), args.clip, not args.quiet, args.runs)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if all(result["summary"]["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
