"""``python -m firmware_models <command>``: the whole model toolchain behind one CLI.

Commands: render, train, export, import, label, quantize, evaluate, detect, card, check-manifest,
build-all, retune, export-c, adapt.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from shared.manifest import ManifestError, load_manifest

from .calibration import RENDERED, CalibrationError


def _reference(name: str, smoke: bool):
    from .reference import REFERENCE_MODELS

    if name not in REFERENCE_MODELS:
        raise SystemExit(f"unknown reference model {name!r}; choose from {sorted(REFERENCE_MODELS)}")
    ref = REFERENCE_MODELS[name]
    return ref.smoke() if smoke else ref


def cmd_render(args: argparse.Namespace) -> int:
    """A video with per-frame truth (JSON lines), or still frames with truth."""
    from dataclasses import asdict

    import cv2
    from tqdm import tqdm

    from synthetic_world import SyntheticVideo, still_samples, write_video

    out = Path(args.out)
    if args.stills:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "truth.jsonl", "w") as fh:
            for i, (image, objects) in enumerate(
                tqdm(still_samples(args.seed, args.stills), total=args.stills, desc="render stills")
            ):
                cv2.imwrite(str(out / f"{i:06d}.png"), image)
                fh.write(json.dumps({"file": f"{i:06d}.png", "objects": [asdict(o) for o in objects]}) + "\n")
        print(f"wrote {args.stills} frames and truth.jsonl to {out}")
        return 0
    video = SyntheticVideo(
        seed=args.seed,
        width=args.width,
        height=args.height,
        fps=args.fps,
        duration_s=args.duration,
        scene=args.scene,
    )
    write_video(video, out, progress=True)
    truth = out.with_suffix(".truth.json")
    truth.write_text(
        json.dumps(
            {
                "lines": video.lines,
                "zones": video.zones,
                "events": [asdict(e) for e in video.truth_events()],
                "frames": [[asdict(o) for o in video.objects_at(i)] for i in range(len(video))],
            }
        )
        + "\n"
    )
    print(f"wrote {out} ({len(video)} frames) and {truth}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .build import seeds, training_data
    from .train import train

    ref = _reference(args.model, args.smoke)
    x, y = training_data(ref, seeds(ref)["train"], ref.train_count)
    net = train(ref, x, y)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .build import base_manifest
    from .export import export_onnx
    from .train import build_net

    ref = _reference(args.model, False)
    net = build_net(ref)
    net.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    net.eval()
    if hasattr(net, "softmax"):
        net.softmax = True
    path = export_onnx(net, base_manifest(ref), args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """A foreign ONNX export → a fixed fp32 model + manifest draft, with a plain report."""
    from .importer import ImportFailed, import_model

    overrides: dict = {}
    for key in ("color", "resize", "align", "interpolation"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.pad_value is not None:
        overrides["pad_value"] = args.pad_value
    if args.scale is not None:
        overrides["scale"] = args.scale
    if args.mean is not None:
        overrides["mean"] = args.mean
    if args.std is not None:
        overrides["std"] = args.std
    try:
        report = import_model(
            Path(args.model),
            Path(args.out),
            name=args.name,
            version=args.version,
            input_overrides=overrides,
            score_threshold=args.score_threshold,
        )
    except ImportFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    """A teacher's boxes on real frames → a COCO JSON dataset with scores, and a summary."""
    from .label import LabelError, label, parse_class_map

    try:
        summary = label(
            args.teacher,
            args.source,
            args.out,
            class_map=parse_class_map(args.map),
            student_labels=tuple(args.labels.split(",")),
            min_score=args.min_score,
            every=args.every,
        )
    except LabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .byom import quantize_package
    from .quantize import QuantizeFailed

    try:
        result = quantize_package(
            Path(args.manifest),
            args.calib,
            args.count,
            Path(args.out),
            min_agreement=args.min_agreement,
            exclude_ops=tuple(x for x in args.exclude_op if x)
            if args.exclude_op is not None
            else ("Softmax",),
            exclude_nodes=tuple(args.exclude_node or ()),
            reduce_range=args.reduce_range,
            golden_atol=args.golden_atol,
            float_tail=not args.quantize_tail,
            float_first=args.float_first,
            model=Path(args.model) if args.model else None,
        )
    except QuantizeFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.text())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .byom import latency_by_mode, micro_agreement, recommend
    from .evaluate import compare, eval_set, write_report

    manifest, int8_default = load_manifest(args.manifest, verify_file=False)
    int8 = Path(args.int8) if args.int8 else int8_default
    fp32 = (
        Path(args.fp32)
        if args.fp32
        else int8.parent / manifest.quantization.get("fp32_file", "model.fp32.onnx")
    )
    data = eval_set(manifest, args.data, args.count, seed=args.seed)
    report = compare(fp32, int8, manifest, data, runs=args.runs)
    if not data.has_truth:
        report["agreement"] = {
            "value": round(micro_agreement(report["int8"]), 4),
            "matched": "boxes at IoU 0.5" if manifest.decoder.type.value not in ("classifier",) else "class",
            "per_class": report["int8"]["per_class"],
        }
    report["latency_by_mode"] = latency_by_mode(fp32, int8, manifest, data.frames[0], args.runs)
    sizes = {"fp32": report["fp32"]["bytes"], "int8": report["int8"]["bytes"]}
    agreed = report["agreement"]["value"] if "agreement" in report else None
    report["recommendation"] = recommend(report["latency_by_mode"], sizes, agreed)
    out = Path(args.json)
    write_report(report, out, Path(args.png) if args.png else out.with_suffix(".png"))
    keys = ("name", "metric", "fp32", "int8", "agreement", "latency_by_mode", "goals", "recommendation")
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=2))
    print(f"recommendation: {report['recommendation']['text']}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    """Per frame of a video, the model runtime's detections as one JSON line (normalised coordinates)."""
    from .detect import detect_lines

    for line in detect_lines(Path(args.model), args.source, args.max_frames):
        print(line, flush=True)
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from .build import DOCS_DIR
    from .card import write_card

    directory = Path(args.directory)
    manifest, _ = load_manifest(directory)
    report = json.loads((directory / "eval.json").read_text())
    path = write_card(manifest, report, Path(args.out) if args.out else DOCS_DIR / f"{manifest.name}.md")
    print(f"wrote {path}")
    return 0


def cmd_check_manifest(args: argparse.Namespace) -> int:
    from .manifest_check import check_path

    found = check_path(args.manifest, args.model)
    errors = [p for p in found if not p.startswith("note:")]
    for line in found:
        print(line)
    if errors:
        print(f"{len(errors)} problem(s): the manifest does not describe the model", file=sys.stderr)
        return 1
    print("ok: the manifest matches the model")
    return 0


def cmd_build_all(args: argparse.Namespace) -> int:
    from .build import build_all

    result = build_all(
        args.only or None,
        smoke=args.smoke,
        out_root=Path(args.out) if args.out else None,
        docs_dir=Path(args.docs) if args.docs else None,
    )
    print(json.dumps(result, indent=2))
    return 0


def cmd_retune(args: argparse.Namespace) -> int:
    """A decoder-only release: re-tune and re-evaluate a built reference model under its new version."""
    from .build import retune

    ref = _reference(args.model, smoke=False)
    try:
        report = retune(ref, Path(args.dir) if args.dir else None, Path(args.docs) if args.docs else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("name", "version", "metric", "goals")}, indent=2))
    return 0


def cmd_export_c(args: argparse.Namespace) -> int:
    """An int8 QDQ model folder → the C header the microcontroller firmware compiles in."""
    from .export_c import ExportError, export_c

    try:
        path = export_c(Path(args.model), Path(args.out))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _frame_range(text: str) -> tuple[int, int]:
    """``A:B`` → frames A..B-1 of the decoded clip."""
    a, sep, b = text.partition(":")
    try:
        start, stop = int(a), int(b)
    except ValueError:
        raise ValueError(f"frame range {text!r}: expected A:B (frame indices, B excluded)") from None
    if not sep or start < 0 or stop <= start:
        raise ValueError(f"frame range {text!r}: empty or negative (need 0 <= A < B)")
    return start, stop


def _clip_range_frames(path: str, stop: int) -> list:
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open this clip")
    frames = []
    try:
        while len(frames) < stop:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"{path}: cannot open this clip (no frames decoded)")
    return frames


def cmd_adapt(args: argparse.Namespace) -> int:
    """Fine-tune a student on one clip's earlier frames, judge it on later ones (firmware_models.adapt)."""
    from dataclasses import replace

    from tqdm import tqdm

    from .adapt import AdaptError, AdaptSettings, adapt

    try:
        train, judge = _frame_range(args.train_frames), _frame_range(args.judge_frames)
        if train[0] < judge[1] and judge[0] < train[1]:
            raise ValueError(
                f"--train-frames {args.train_frames} and --judge-frames {args.judge_frames} overlap"
            )
        if judge[0] < train[1]:
            raise ValueError("--judge-frames must come after --train-frames (judge on later frames)")
        frames = _clip_range_frames(args.source, max(train[1], judge[1]))
        if len(frames) < judge[1]:
            raise ValueError(f"{args.source}: has {len(frames)} frames, --judge-frames ends at {judge[1]}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = AdaptSettings()
    if args.steps is not None:
        settings = replace(settings, steps=args.steps)
    bars: dict[str, tqdm] = {}

    def progress(p) -> None:
        bar = bars.get(p.stage)
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[p.stage] = tqdm(
                total=p.total, desc=p.stage, disable=args.json and not sys.stderr.isatty()
            )
        bar.n = p.done
        bar.set_postfix_str(p.message[:40], refresh=True)

    try:
        report = adapt(
            teacher=Path(args.teacher), base=Path(args.base), train=frames[train[0] : train[1]],
            judge=frames[judge[0] : judge[1]], out=Path(args.out), settings=settings, version=args.version,
            on_progress=progress,
        )  # fmt: skip
    except AdaptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(report["reason"])
        print(
            f"report: {Path(args.out) / 'report.json'}"
            + (f"; model: {report['model']['dir']}" if report["model"] else "")
        )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m firmware_models", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render a video (+ .truth.json) or --stills N frames (+ truth.jsonl)")
    r.add_argument("--out", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--scene", default="street", choices=["street", "indoor", "static"])
    r.add_argument("--width", type=int, default=320)
    r.add_argument("--height", type=int, default=192)
    r.add_argument("--fps", type=float, default=10.0)
    r.add_argument("--duration", type=float, default=20.0)
    r.add_argument("--stills", type=int, default=0, help="write N still frames into the --out folder instead")
    r.set_defaults(func=cmd_render)

    t = sub.add_parser("train", help="train a reference model on rendered data; writes a torch checkpoint")
    t.add_argument("model")
    t.add_argument("--out", required=True)
    t.add_argument("--smoke", action="store_true", help="tiny data, one epoch")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="checkpoint → ONNX (opset 17, metadata_props)")
    e.add_argument("model")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True)
    e.set_defaults(func=cmd_export)

    i = sub.add_parser(
        "import",
        help="a foreign ONNX export → fixed fp32 model.onnx + manifest draft in --out, with a report",
    )
    i.add_argument("model", help="the exported fp32 .onnx file")
    i.add_argument(
        "--out", required=True, help="output folder (model.onnx, manifest.json, import-report.json)"
    )
    i.add_argument("--name", help="model name in the manifest (default: from the file name)")
    i.add_argument("--version", default="1.0.0", help="model version (semver) in the manifest")
    i.add_argument("--score-threshold", type=float, default=0.3, help="decoder score threshold")
    i.add_argument("--color", choices=["RGB", "BGR", "GRAY"], help="channel order the model expects")
    i.add_argument("--scale", type=float, help="pixel * scale before (x - mean) / std (1/255 or 1)")
    i.add_argument("--mean", type=float, nargs="+", help="per-channel mean, in the model's channel order")
    i.add_argument("--std", type=float, nargs="+", help="per-channel std, in the model's channel order")
    i.add_argument("--resize", choices=["stretch", "letterbox"], help="how frames fit the input")
    i.add_argument("--align", choices=["center", "top-left"], help="letterbox placement")
    i.add_argument("--pad-value", type=int, help="letterbox pad pixel value (0-255)")
    i.add_argument(
        "--interpolation", choices=["area", "linear", "nearest", "cubic"], help="resize interpolation"
    )
    i.set_defaults(func=cmd_import)

    lb = sub.add_parser(
        "label", help="a teacher detector over real frames → COCO JSON dataset (boxes, scores) for a student"
    )
    lb.add_argument(
        "--teacher", required=True, help="teacher: model folder with manifest.json, or an .onnx export"
    )
    lb.add_argument("--source", required=True, nargs="+", help="videos, images, or folders of them")
    lb.add_argument("--out", required=True, help="dataset folder (annotations.json + images/)")
    lb.add_argument(
        "--map",
        action="append",
        help="TEACHER=STUDENT class mapping (repeatable; default person, car/bus/truck→car, "
        "bicycle/motorcycle→bicycle)",
    )
    lb.add_argument("--labels", default="person,car,bicycle", help="the student's labels, comma-separated")
    lb.add_argument(
        "--min-score", type=float, help="keep teacher boxes from this score (default: its threshold)"
    )
    lb.add_argument("--every", type=int, default=1, help="label every N-th frame")
    lb.set_defaults(func=cmd_label)

    q = sub.add_parser(
        "quantize",
        help="fp32 model + manifest → int8 model.onnx, golden.npz, manifest.json (+ fp32/ variant) in --out",
    )
    q.add_argument("--manifest", required=True, help="manifest describing the fp32 model (precision fp32)")
    q.add_argument("--model", help="fp32 model (default: the manifest's file)")
    q.add_argument(
        "--calib", default=RENDERED, help="'rendered', a folder of images or videos, or a video file"
    )
    q.add_argument(
        "--count", type=int, default=200, help="calibration frames (as many again are held out for agreement)"
    )
    q.add_argument("--seed", type=int, default=4, help="seed of rendered calibration frames")
    q.add_argument(
        "--min-agreement",
        type=float,
        default=0.97,
        help="fail (exit 1) when int8 agrees with fp32 on fewer held-out boxes than this",
    )
    q.add_argument(
        "--exclude-op",
        action="append",
        help="op type kept in float (repeatable; default Softmax; --exclude-op '' keeps none)",
    )
    q.add_argument("--exclude-node", action="append", help="regex of node names kept in float (repeatable)")
    q.add_argument("--golden-atol", type=float, default=0.05, help="tolerance of the golden outputs")
    q.add_argument(
        "--float-first",
        type=int,
        help="keep the first N conv/matmul layers in float (default: 0, then 2, 4, 8 until --min-agreement)",
    )
    q.add_argument(
        "--quantize-tail",
        action="store_true",
        help="also quantize the output tail after the last conv (kept in float by default: no speed there)",
    )
    q.add_argument(
        "--reduce-range",
        action="store_true",
        help="7-bit weights: fast and exact on x86 CPUs without VNNI (AVX2), at a small accuracy cost",
    )
    q.add_argument("--out", required=True, help="output folder")
    q.set_defaults(func=cmd_quantize)

    v = sub.add_parser("evaluate", help="fp32 vs int8 on one held-out set: metric, size, latency; JSON + PNG")
    v.add_argument("--manifest", required=True, help="the int8 model's manifest")
    v.add_argument("--int8", help="int8 model (default: the manifest's file)")
    v.add_argument("--fp32", help="default: quantization.fp32_file beside the int8 model")
    v.add_argument(
        "--data",
        default=RENDERED,
        help="'rendered' (with truth) or a folder of images/videos or a video (agreement with fp32)",
    )
    v.add_argument("--count", type=int, default=300, help="evaluation frames")
    v.add_argument("--seed", type=int, default=3, help="seed of rendered evaluation frames")
    v.add_argument("--runs", type=int, default=300, help="timed inferences per model and precision mode")
    v.add_argument("--json", required=True, help="report file (JSON)")
    v.add_argument("--png", help="chart file (default: beside --json)")

    d = sub.add_parser("detect", help="the model runtime's detections on a video, one JSON object per frame")
    d.add_argument("--model", required=True, help="model folder (manifest.json + model)")
    d.add_argument("--source", required=True, help="video file (or image folder)")
    d.add_argument("--json", action="store_true", help="JSON lines output (the only format)")
    d.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    d.set_defaults(func=cmd_detect)
    v.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("card", help="write the model card from a model folder's manifest.json + eval.json")
    c.add_argument("directory")
    c.add_argument("--out")
    c.set_defaults(func=cmd_card)

    m = sub.add_parser("check-manifest", help="check a manifest against its model's real inputs and outputs")
    m.add_argument("manifest")
    m.add_argument("--model", help="model file (default: the manifest's file beside it)")
    m.set_defaults(func=cmd_check_manifest)

    b = sub.add_parser("build-all", help="rebuild every reference model from nothing (make models)")
    b.add_argument("--only", action="append", help="a reference model name (repeatable)")
    b.add_argument("--smoke", action="store_true", help="tiny data, one epoch (tests)")
    b.add_argument("--out", help="output root (default: firmware_models/reference)")
    b.add_argument("--docs", help="model card folder (default: docs/models)")
    b.set_defaults(func=cmd_build_all)

    x = sub.add_parser("export-c", help="int8 QDQ model folder → C header for the microcontroller library")
    x.add_argument("--model", required=True, help="folder with model.onnx and manifest.json")
    x.add_argument("--out", required=True, help="folder for es_model_data.h")
    x.set_defaults(func=cmd_export_c)

    u = sub.add_parser(
        "retune", help="same weights, decoder re-tuned and re-evaluated under the reference's new version"
    )
    u.add_argument("model", help="a reference model name")
    u.add_argument("--dir", help="the built model folder (default: firmware_models/reference/<name>)")
    u.add_argument("--docs", help="model card folder (default: docs/models)")
    u.set_defaults(func=cmd_retune)

    a = sub.add_parser(
        "adapt", help="fine-tune a student on a clip's earlier frames, judged against a teacher on later ones"
    )
    a.add_argument("--teacher", required=True, help="teacher model folder or .onnx export")
    a.add_argument("--base", required=True, help="the student model folder to adapt (manifest.json + model)")
    a.add_argument("--source", required=True, help="the site's clip")
    a.add_argument(
        "--train-frames", required=True, metavar="A:B", help="frame indices to train on (B excluded)"
    )
    a.add_argument("--judge-frames", required=True, metavar="C:D", help="later frame indices to judge on")
    a.add_argument("--out", required=True, help="output folder (report.json; model/ when better)")
    a.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: AdaptSettings)")
    a.add_argument(
        "--version", default=None, help="the adapted model's version (default: base patch+1 -site.<utc>)"
    )
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.set_defaults(func=cmd_adapt)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ManifestError, CalibrationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
