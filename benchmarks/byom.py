"""Bring your own model, measured on the two real COCO teachers (YOLOX-nano, NanoDet-m).

Each teacher goes through ``import`` and ``quantize`` (calibration from ../shared/data/video) as a user
would, then fp32 and int8 are timed in each of onnxruntime's int8 precision modes (exact: u8 x u8, the
only exact one on x86 without VNNI; fast: u8 x s8) in one interleaved run per mode, single-threaded.

``python -m benchmarks.byom --json`` prints one JSON object as its last line:
``{"cpu": {...}, "teachers": [{"name", "agreement", "strict_agreement", "per_class", "fp32_bytes",
"int8_bytes", "size_ratio", "latency_ms": {"exact": {"fp32_p50", "int8_p50", "int8_vs_fp32"}, "fast":
{...}}, "recommendation"}]}``. Goals: agreement ≥ 0.97, int8 file ≤ 0.35 x fp32.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from firmware_models.byom import evaluate_package, quantize_package
from firmware_models.teachers import TEACHERS, import_teacher, video_dir
from shared.int8_precision import EXACT_U8S8_FLAGS, cpu_flags


def run(count: int, eval_count: int, runs: int, work: Path) -> dict:
    rows = []
    for name in sorted(TEACHERS):
        import_teacher(name, work / f"{name}-fp32")
        q = quantize_package(
            work / f"{name}-fp32" / "manifest.json",
            str(video_dir()),
            count,
            work / f"{name}-int8",
            progress=False,
        )
        report = evaluate_package(work / f"{name}-int8", str(video_dir()), eval_count, runs)
        lat = report["latency_ms"]
        rows.append(
            {
                "name": name,
                "calibration_frames": q.used,
                "float_first_weight_ops": q.quantization["float_first_weight_ops"],
                "agreement": report["agreement"]["value"],
                "strict_agreement": report["agreement"]["strict_value"],
                "per_class": report["agreement"]["per_class_f1"],
                "eval_frames": report["data"]["frames"],
                "fp32_bytes": report["bytes"]["fp32"],
                "int8_bytes": report["bytes"]["int8"],
                "size_ratio": report["int8_vs_fp32_size"],
                "latency_ms": {
                    mode: {
                        "fp32_p50": lat[mode]["fp32"]["p50_ms"],
                        "int8_p50": lat[mode]["int8"]["p50_ms"],
                        "int8_vs_fp32": lat[mode]["int8_vs_fp32"],
                    }
                    for mode in lat
                },
                "recommendation": report["recommendation"],
                "goals": {
                    "agreement_ge_0.97": report["agreement"]["value"] >= 0.97,
                    "int8_bytes_le_0.35x": report["int8_vs_fp32_size"] <= 0.35,
                },
            }
        )
    flags = cpu_flags() or set()
    return {
        "cpu": {"machine": platform.machine(), "int8_flags": sorted(flags & (EXACT_U8S8_FLAGS | {"avx2"}))},
        "teachers": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true", help="print only JSON (last line: the result)")
    p.add_argument("--count", type=int, default=100, help="calibration frames asked per teacher")
    p.add_argument("--eval-count", type=int, default=120, help="agreement frames per teacher")
    p.add_argument("--runs", type=int, default=200, help="timed inferences per model and precision mode")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.count, args.eval_count, args.runs, Path(tmp))
    if not args.json:
        for r in result["teachers"]:
            print(
                f"{r['name']:11s} agreement {r['agreement']:.4f} (strict {r['strict_agreement']:.4f}) | "
                f"{r['fp32_bytes']:,} B → {r['int8_bytes']:,} B ({r['size_ratio']:.2f}x) | "
                + " | ".join(
                    f"{m}: {v['fp32_p50']:.1f} → {v['int8_p50']:.1f} ms ({v['int8_vs_fp32']:.2f}x)"
                    for m, v in r["latency_ms"].items()
                ),
                file=sys.stderr,
            )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
