"""The C library built for the host (``es_host_run``): the same code as the firmware, run natively."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .build import HOST_RUNNER
from .reference import BoardDetection


def parse_detections(lines: list[str]) -> list[BoardDetection]:
    """``label score cx cy x1 y1 x2 y2`` lines → detections."""
    out = []
    for line in lines:
        f = line.split()
        v = [float(x) for x in f[1:]]
        out.append(BoardDetection(int(f[0]), v[0], (v[1], v[2]), (v[3], v[4], v[5], v[6])))
    return out


def _records(text: str, with_raw: bool) -> list[tuple[np.ndarray | None, list[BoardDetection]]]:
    lines = text.splitlines()
    i, results = 0, []
    while i < len(lines):
        raw = None
        if with_raw:
            assert lines[i].startswith("Q "), lines[i]
            raw = np.frombuffer(bytes.fromhex(lines[i][2:]), np.uint8)
            i += 1
        n = int(lines[i].split()[1])
        results.append((raw, parse_detections(lines[i + 1 : i + 1 + n])))
        i += 1 + n
    return results


def run_frames(frames: Iterable[np.ndarray], runner: Path = HOST_RUNNER):
    """Pixels ``[C, H, W]`` per frame → (raw head tensor, detections) per frame."""
    data = b"".join(b"F" + np.ascontiguousarray(f, np.uint8).tobytes() for f in frames)
    proc = subprocess.run([str(runner)], input=data, capture_output=True, check=True)
    return _records(proc.stdout.decode(), with_raw=True)


def decode_raw(raws: Iterable[np.ndarray], runner: Path = HOST_RUNNER) -> list[list[BoardDetection]]:
    """Raw head tensors → the C decoder's detections."""
    data = b"".join(b"R" + np.ascontiguousarray(r, np.uint8).tobytes() for r in raws)
    proc = subprocess.run([str(runner)], input=data, capture_output=True, check=True)
    return [d for _, d in _records(proc.stdout.decode(), with_raw=False)]
