"""Play a real clip to the firmware on QEMU and collect what it did: the one entry point the CLI, the
benchmark and the tests share."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.manifest import load_manifest

from .build import DEFAULT_MODEL, FIRMWARE
from .clips import clip_frames
from .link import BoardResult
from .session import BoardSession


@dataclass(frozen=True)
class Device:
    """The board's identity on the fleet: its id and its own broker credentials."""

    device_id: str
    password: str
    broker: tuple[str, int]
    keepalive_s: int = 60


@dataclass
class Run:
    frames: list[np.ndarray]
    stats: dict
    results: list[BoardResult] = field(default_factory=list)
    mqtt_bytes_out: int = 0
    exit_code: int = 0


def play(
    frames: list[np.ndarray],
    *,
    device: Device | None = None,
    results: bool = False,
    icount: bool = False,
    fps: float = 0.0,
    model_dir: Path = DEFAULT_MODEL,
    firmware: Path = FIRMWARE,
    check: bool = True,
) -> Run:
    """Boot the board, configure it, feed ``frames`` (paced at ``fps`` when > 0), let it deliver its
    events and stop (``check``: a non-zero exit of the firmware raises). Frame timestamps are the
    host's clock, as a camera's would be."""
    raw_bytes = _raw_bytes(model_dir)
    with BoardSession(
        firmware, raw_bytes=raw_bytes, broker=device.broker if device else None, icount=icount
    ) as board:
        config: dict[str, object] = {"results": int(results), "boot": random.getrandbits(31)}
        if device:
            config.update(
                device=device.device_id,
                username=device.device_id,
                password=device.password,
                keepalive=device.keepalive_s,
            )
        board.configure(**config)
        start = time.monotonic()
        for i, pixels in enumerate(frames):
            if fps > 0:
                time.sleep(max(0.0, start + i / fps - time.monotonic()))
            board.feed(i, pixels)
        stats = board.finish(check)
        return Run(frames, stats, list(board.results), board.mqtt_bytes_out, board.exit_code or 0)


def clip(path: Path, count: int, step: int = 1, model_dir: Path = DEFAULT_MODEL) -> list[np.ndarray]:
    manifest, _ = load_manifest(model_dir)
    return list(clip_frames(path, manifest.input, count=count, step=step))


def _raw_bytes(model_dir: Path) -> int:
    from firmware_models.export_c import parse

    c, h, w = parse(model_dir).layers[-1].out_shape
    return c * h * w
