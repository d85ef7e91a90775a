"""fp32 vs int8 for every committed reference model, measured now on its held-out set, single-threaded.

``python -m benchmarks.models --json`` prints one JSON object as its last line:
``{"models": [{"name", "decoder", "metric", "fp32_metric", "int8_metric", "fp32_bytes", "int8_bytes",
"fp32_p50_ms", "int8_p50_ms"}, …]}``. Goals: int8 metric within 0.01 of fp32, int8 p50 ≤ 0.7 × fp32 p50,
int8 file ≤ 0.3 × fp32 file.
"""

from __future__ import annotations

import argparse
import json
import sys

from firmware_models.build import seeds
from firmware_models.evaluate import compare, eval_set
from firmware_models.reference import REFERENCE_MODELS
from shared.manifest import load_manifest


def run(count: int | None = None, runs: int = 500) -> list[dict]:
    rows = []
    for ref in REFERENCE_MODELS.values():
        manifest, int8_path = load_manifest(ref.directory)
        fp32_path = int8_path.parent / manifest.quantization["fp32_file"]
        data = eval_set(manifest, count=count or ref.test_count, seed=seeds(ref)["test"])
        report = compare(fp32_path, int8_path, manifest, data, runs=runs)
        rows.append(
            {
                "name": manifest.name,
                "decoder": report["decoder"],
                "metric": report["metric"],
                "fp32_metric": report["fp32"]["metric"],
                "int8_metric": report["int8"]["metric"],
                "fp32_bytes": report["fp32"]["bytes"],
                "int8_bytes": report["int8"]["bytes"],
                "fp32_p50_ms": report["fp32"]["p50_ms"],
                "int8_p50_ms": report["int8"]["p50_ms"],
                "fp32_p99_ms": report["fp32"]["p99_ms"],
                "int8_p99_ms": report["int8"]["p99_ms"],
                "samples": report["data"]["samples"],
                "goals": report["goals"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true", help="print only JSON (last line: the result)")
    p.add_argument("--count", type=int, help="held-out samples per model (default: the model's test set)")
    p.add_argument("--runs", type=int, default=500, help="timed inferences per model and precision")
    args = p.parse_args(argv)
    rows = run(args.count, args.runs)
    if not args.json:
        for r in rows:
            print(
                f"{r['name']:16s} {r['metric']}: fp32 {r['fp32_metric']:.4f} int8 {r['int8_metric']:.4f} | "
                f"{r['fp32_bytes']:,} B → {r['int8_bytes']:,} B | p50 {r['fp32_p50_ms']:.3f} → "
                f"{r['int8_p50_ms']:.3f} ms | goals {r['goals']}",
                file=sys.stderr,
            )
    print(json.dumps({"models": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
