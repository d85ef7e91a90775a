"""``python -m firmware_models.mcu_board run``: the firmware on QEMU, fed a real clip, optionally on a
broker as a device of the fleet. The device's password is read from $EDGESIGHT_DEVICE_PASSWORD (what
``cloud-hub devices add`` printed), never from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .build import DEFAULT_MODEL, make
from .clips import DEFAULT_CLIP, video_dir
from .run import Device, clip, play


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_models.mcu_board", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="boot the board on QEMU and play a clip to it")
    r.add_argument("--clip", type=Path, default=None, help=f"video file (default: the shared {DEFAULT_CLIP})")
    r.add_argument("--frames", type=int, default=20)
    r.add_argument("--step", type=int, default=2, help="take every STEP-th frame")
    r.add_argument(
        "--fps", type=float, default=0.0, help="pace the frames (0: as fast as the board takes them)"
    )
    r.add_argument("--broker", help="mqtt://HOST:PORT of the hub's broker (plain MQTT)")
    r.add_argument("--device", help="the board's device id (provisioned with cloud-hub devices add)")
    r.add_argument("--icount", action="store_true", help="deterministic instruction counting (slower)")
    args = p.parse_args(argv)

    make("board")
    device = None
    if args.broker:
        password = os.environ.get("EDGESIGHT_DEVICE_PASSWORD")
        if not args.device or not password:
            print("error: --broker needs --device and $EDGESIGHT_DEVICE_PASSWORD", file=sys.stderr)
            return 2
        url = urlsplit(args.broker)
        device = Device(args.device, password, (url.hostname or "127.0.0.1", url.port or 1883))
    frames = clip(args.clip or video_dir() / DEFAULT_CLIP, args.frames, args.step, DEFAULT_MODEL)
    run = play(frames, device=device, icount=args.icount, fps=args.fps, check=False)
    print(json.dumps({**run.stats, "exit_code": run.exit_code, "mqtt_bytes_out": run.mqtt_bytes_out}))
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
