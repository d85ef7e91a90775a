"""The model card of a distilled student, from its folder: ``manifest.json``, ``eval.json`` (the build's
in-sample figures) and, when present, ``realworld.json`` (``python -m benchmarks.realworld --json``:
leave-one-clip-out, the figures that say how it does on a clip it never saw)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.manifest import ModelManifest


def _of(count: dict[str, Any]) -> str:
    return f"{count['exact']}/{count['frames']}"


def _loco_table(loco: dict[str, Any]) -> str:
    rows = [
        "| held-out clip | frames | person F1 int8 (fp32) | car F1 int8 | count exact student / teacher "
        "| fomo-street person F1 |",
        "|---|---|---|---|---|---|",
    ]
    for c in loco["clips"]:
        pc = c["int8"]["f1"]["per_class"]
        p32 = c["fp32"]["f1"]["per_class"]
        street = c["fomo_street"]["f1"]["per_class"]
        person = f"{pc['person']['f1']} ({p32['person']['f1']})" if "person" in pc else "—"
        car = str(pc["car"]["f1"]) if "car" in pc else "—"
        sc, tc = c["int8"]["count"], c["teacher_count"]
        rows.append(
            f"| {c['clip']} | {c['frames']} | {person} | {car} | {sc['exact']}/{sc['frames']} / "
            f"{tc['exact']}/{tc['frames']} | {street['person']['f1'] if 'person' in street else '—'} |"
        )
    s = loco["summary"]
    goals = ", ".join(f"{k} {'met' if v else '**NOT met**'}" for k, v in s["goals"].items())
    lat = loco["latency"]
    return (
        "\n".join(rows)
        + f"\n\nPerson F1 int8: mean {s['person_f1_int8']['mean']}, worst clip {s['person_f1_int8']['min']} "
        f"(fp32 mean {s['person_f1_fp32']['mean']}; fomo-street mean {s['person_f1_fomo_street']['mean']}). "
        f"Person counts exact on {_of(s['counts']['student_int8'])} "
        f"hand-counted frames (teacher {_of(s['counts']['teacher'])}, "
        f"fomo-street {_of(s['counts']['fomo_street'])}). "
        f"int8 p50 {lat['student_int8_p50_ms']} ms vs the teacher's fp32 {lat['teacher_fp32_p50_ms']} ms "
        f"(1/{lat['ratio']}), 1 thread, same run.\n\nGoals: {goals}."
    )


def render_student_card(manifest: ModelManifest, report: dict[str, Any], loco: dict[str, Any] | None) -> str:
    spec, dec = manifest.input, manifest.decoder
    labels = ", ".join(f"{i}={n}" for i, n in enumerate(manifest.labels))
    t8, t32 = report["train_f1"]["int8"], report["train_f1"]["fp32"]
    per = ", ".join(f"{k} {v['f1']}" for k, v in t8["per_class"].items())
    q = manifest.quantization
    held = (
        _loco_table(loco)
        if loco
        else "Not measured yet: run `python -m benchmarks.realworld --json` and keep its output as "
        "`realworld.json` beside the model."
    )
    return f"""# Model card: {manifest.name} {manifest.version} (experimental)

{manifest.description}

_Generated from `firmware_models/experimental/{manifest.name}/` (manifest.json, eval.json, realworld.json)._

## Intended use
An experiment in distillation: a tiny int8 FOMO student that has seen real people, for cameras like
the six CC BY sample clips (indoor rooms, a store aisle, a parking lot from above). It is **not** the
edge agent's default; `fomo-street` is. It finds centres, not boxes. Read the held-out figures below
before trusting it on a new scene: with six clips to learn from, a new kind of scene is a new world.

## Interface
- Input `{spec.name}`: {list(spec.shape)} {spec.layout} {spec.dtype}, {spec.color}, resize {spec.resize},
  x·{spec.scale:.6g}.
- Output `probs` {list(manifest.outputs[0].shape or [])}: per-cell class probabilities (softmax inside).
- Labels: {labels}.
- Decoder: `fomo`, score_threshold {dec.score_threshold} (tuned on the training frames), params {dec.params}.

## How it was made
1. `python -m firmware_models label`: YOLOX-nano (COCO, Apache-2.0, `../shared/models/teachers`) over
   every frame of the six clips in `../shared/data/video` (intel-iot-devkit/sample-videos, CC BY 4.0) →
   COCO JSON; person → person, car/bus/truck → car, bicycle/motorcycle → bicycle; scores kept.
2. Pretrained {report["spec"]["pretrain_steps"]} steps on {report["spec"]["pretrain_frames"]} rendered
   frames, then {report["spec"]["steps"]} steps (batch {report["spec"]["batch_size"]}) on teacher-labelled
   real frames ({int(report["spec"]["real_fraction"] * 100)} % of each batch, every clip weighted the same)
   mixed with rendered ones; soft targets (the teacher's score on the centre cell, the middle half of each
   box "don't care"); augmentations: scale/crop, zoom-out, flip, colour, blur, noise, JPEG.
3. Quantized with the issue-9 toolchain ({q.get("format", "")}, per-channel, {q.get("calibrate_method")}
   on {q.get("calibration_frames")} frames from {q.get("calibration_source")}).
Rebuild: `make models` (needs `../shared` for the teacher and the clips).

## Held-out figures (leave one clip out, `python -m benchmarks.realworld --json`)
Each row: a student distilled from the *other* clips plus the rendered world, scored on every frame of
the held-out clip against the teacher's boxes (score ≥ 0.5 must be found; below is "don't care"; a hit
is within one cell or the middle half of the box), and its person counts against the hand counts in
`benchmarks/data/hand_counts/` (teacher's own exact rate beside it, its boxes ≥ 0.3).

{held}

## In-sample figures (the frames it was trained on; a sanity check, not a quality claim)
Centroid F1 against the teacher on {report["tuned_on"]}: int8 {t8["value"]} ({per}), fp32 {t32["value"]}.
File sizes: int8 {report["bytes"]["int8"]:,} B, fp32 {report["bytes"]["fp32"]:,} B. p50 (1 thread):
int8 {report["int8"]["p50_ms"]} ms, fp32 {report["fp32"]["p50_ms"]} ms.

## Limits
- **Not good enough to be a default** while the held-out goals above are missed: on a clip it has not
  seen it finds many of the people but also lights doors, chairs and shelves (classroom: 320 false
  alarms in 45 frames at the 0.2 threshold the training frames chose), and puts a near person's
  centre on the head rather than mid-body (head-pose). In-sample it agrees with the teacher (below):
  five clips are too few scenes to learn "person" from, not a broken pipeline.
- Six short clips, one teacher: its labels are its mistakes too (it misses people at frame edges and
  calls a car seen from above a truck or bus at low scores).
- Bicycles: three teacher boxes in all the clips; the bicycle class is not really trained.
"""


def write_student_card(model_dir: Path, path: Path) -> Path:
    manifest = ModelManifest.model_validate_json((model_dir / "manifest.json").read_text())
    report = json.loads((model_dir / "eval.json").read_text())
    loco_file = model_dir / "realworld.json"
    loco = json.loads(loco_file.read_text()) if loco_file.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_student_card(manifest, report, loco))
    return path
