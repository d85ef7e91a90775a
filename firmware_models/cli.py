"""``python -m firmware_models <command>``: the whole model toolchain behind one CLI.

Commands: render, train, export, quantize, evaluate, card, check-manifest, build-all, retune, export-c.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from shared.manifest import ManifestError, load_manifest, sha256_file

from .calibration import RENDERED, CalibrationError, load_frames


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


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize_model

    manifest, default_model = load_manifest(args.manifest, verify_file=False)
    model = Path(args.model) if args.model else default_model
    frames = load_frames(
        args.calib,
        args.count,
        seed=args.seed,
        crops=manifest.decoder.type.value == "classifier" and args.calib == RENDERED,
        crop_labels=manifest.labels,
    )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    int8_path = out_dir / "model.onnx"
    info = quantize_model(
        model, int8_path, manifest, frames, calibration_source=str(args.calib), reduce_range=args.reduce_range
    )
    info.update(
        {"fp32_file": model.name, "fp32_sha256": sha256_file(model), "fp32_size_bytes": model.stat().st_size}
    )
    int8_manifest = manifest.model_copy(
        update={
            "file": "model.onnx",
            "precision": "int8",
            "sha256": sha256_file(int8_path),
            "size_bytes": int8_path.stat().st_size,
            "quantization": info,
            "golden": None,
        }
    )
    (out_dir / "manifest.json").write_text(int8_manifest.to_json())
    print(
        f"wrote {int8_path} ({int8_path.stat().st_size:,} bytes, fp32 {model.stat().st_size:,}) and "
        f"{out_dir / 'manifest.json'}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
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
    out = Path(args.json)
    write_report(report, out, Path(args.png) if args.png else out.with_suffix(".png"))
    print(json.dumps({k: report[k] for k in ("name", "metric", "fp32", "int8", "goals")}, indent=2))
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

    q = sub.add_parser("quantize", help="fp32 ONNX + manifest → int8 QDQ model.onnx + manifest.json in --out")
    q.add_argument("--manifest", required=True, help="manifest describing the fp32 model")
    q.add_argument("--model", help="fp32 model (default: the manifest's file)")
    q.add_argument("--calib", default=RENDERED, help="'rendered', a folder of images, or a video file")
    q.add_argument("--count", type=int, default=200, help="calibration frames")
    q.add_argument("--seed", type=int, default=4)
    q.add_argument(
        "--reduce-range",
        action="store_true",
        help="7-bit weights: fast and exact on x86 CPUs without VNNI (AVX2), at a small accuracy cost",
    )
    q.add_argument("--out", required=True, help="output folder")
    q.set_defaults(func=cmd_quantize)

    v = sub.add_parser("evaluate", help="fp32 vs int8 on one held-out set: metric, size, latency; JSON + PNG")
    v.add_argument("--manifest", required=True, help="the int8 model's manifest")
    v.add_argument("--int8")
    v.add_argument("--fp32", help="default: quantization.fp32_file beside the int8 model")
    v.add_argument(
        "--data", default=RENDERED, help="'rendered' (with truth) or a folder/video (agreement with fp32)"
    )
    v.add_argument("--count", type=int, default=300)
    v.add_argument("--seed", type=int, default=3)
    v.add_argument("--runs", type=int, default=300, help="timed inferences per model")
    v.add_argument("--json", required=True)
    v.add_argument("--png")
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
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ManifestError, CalibrationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
