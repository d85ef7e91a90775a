"""The microcontroller class on QEMU's mps2-an500 (Cortex-M7): budgets, bit-exactness, the fleet.

    python -m benchmarks.mcu --json [--frames 12]

Builds the firmware (the linker script is a 512 KB flash / 256 KB RAM part), then:
1. runs the golden input and ``--frames`` frames of a real clip under ``-icount shift=0`` with results
   on: ``bit_exact`` is true when every raw head tensor equals onnxruntime's byte for byte and the
   detections agree; ``instructions_per_inference`` is the mean of QEMU's count (model + decode) —
   instructions, not cycles: QEMU models no pipeline or cache;
2. provisions the board on a locked-down Mosquitto + hub (SQLite) and plays 20 frames of the clip:
   ``events_ingested`` is what the hub stored from the board's own MQTT session.

Last line: ``{"model", "flash_bytes", "ram_peak_bytes", "instructions_per_inference", "bit_exact",
"events_ingested", ...}``. Goals: flash ≤ 512 KB, RAM peak ≤ 256 KB, bit_exact, events_ingested > 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub.models import Event
from firmware_models.mcu_board import build
from firmware_models.mcu_board.budgets import instructions, usage
from firmware_models.mcu_board.clips import DEFAULT_CLIP, video_dir
from firmware_models.mcu_board.reference import OrtReference, compare_detections
from firmware_models.mcu_board.run import Device, clip, play
from tests.support.fleet import secure_hub

DEVICE = "mcu-bench-1"


def golden_pixels() -> list[np.ndarray]:
    data = np.load(build.DEFAULT_MODEL / "golden.npz")
    return [
        np.rint(data[k][0] * 255.0).astype(np.uint8) for k in sorted(data.files) if k.startswith("input_")
    ]


def check_bit_exact(frames: list[np.ndarray]) -> tuple[bool, float, dict, list[str]]:
    ref = OrtReference(build.DEFAULT_MODEL)
    run = play(frames, results=True, icount=True)
    problems = []
    for pixels, result in zip(frames, run.results, strict=True):
        want_raw, want_dets = ref.run(pixels)
        if not np.array_equal(result.raw, want_raw.reshape(-1)):
            problems.append(f"frame {result.index}: raw tensor differs")
        problems += [f"frame {result.index}: {p}" for p in compare_detections(result.detections, want_dets)]
    per = [instructions(r.ticks, run.stats) for r in run.results]
    return not problems and len(run.results) == len(frames), float(np.mean(per)), run.stats, problems


def events_through_the_fleet(frames: list[np.ndarray]) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp, secure_hub(Path(tmp), f"sqlite:///{tmp}/hub.db") as hub:
        secret = hub.registry.add(DEVICE, group="mcu").secret
        ep = hub.broker.plain
        run = play(frames, device=Device(DEVICE, secret, (ep.host, ep.port)))
        made = int(run.stats["events_made"])

        def stored() -> int:
            with Session(hub.engine) as db:
                return (
                    db.scalar(select(func.count()).select_from(Event).where(Event.device_id == DEVICE))
                    or 0
                )

        deadline = time.monotonic() + 30
        while stored() < made and time.monotonic() < deadline:
            time.sleep(0.2)
        return made, stored()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.add_argument("--frames", type=int, default=12, help="real-clip frames for the bit-exact run")
    args = p.parse_args(argv)

    build.make("board")
    clip_path = video_dir() / DEFAULT_CLIP
    frames = golden_pixels() + clip(clip_path, args.frames, step=3)
    bit_exact, per_inference, stats, problems = check_bit_exact(frames)
    use = usage(build.FIRMWARE, stats)
    made, ingested = events_through_the_fleet(clip(clip_path, 20, step=2))
    from shared.manifest import load_manifest

    manifest, _ = load_manifest(build.DEFAULT_MODEL)
    result = {
        "model": f"{manifest.name}@{manifest.version}",
        "board": "qemu mps2-an500 (Cortex-M7), linker budget 512 KB flash / 256 KB RAM",
        "flash_bytes": use.flash_bytes,
        "flash_limit": use.flash_limit,
        "ram_peak_bytes": use.ram_peak_bytes,
        "ram_limit": use.ram_limit,
        "static_ram_bytes": use.static_ram_bytes,
        "arena_bytes": int(stats["arena_bytes"]),
        "stack_high_water_bytes": use.stack_high_water_bytes,
        "instructions_per_inference": round(per_inference),
        "frames_checked": len(frames),
        "bit_exact": bit_exact,
        "events_made": made,
        "events_ingested": ingested,
        "clip": clip_path.name,
    }
    if not args.json:
        for line in problems:
            print(line, file=sys.stderr)
    print(json.dumps(result))
    ok = (
        bit_exact
        and use.flash_bytes <= use.flash_limit
        and use.ram_peak_bytes <= use.ram_limit
        and ingested > 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
