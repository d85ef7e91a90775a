"""Run the microcontroller Makefile (the exporter, the host library, the firmware) and name its outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MCU_DIR = REPO / "firmware_models" / "mcu"
BUILD = MCU_DIR / "build"
HOST_RUNNER = BUILD / "host" / "es_host_run"
LIB_TESTS = BUILD / "host" / "test_lib"
FIRMWARE = BUILD / "board" / "edgesight.elf"
DEFAULT_MODEL = REPO / "firmware_models" / "reference" / "fomo-street"


class BuildError(RuntimeError):
    """make failed; the message carries its output."""


def make(*targets: str) -> str:
    """``make -C firmware_models/mcu TARGETS`` with this interpreter as the exporter's Python."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        ["make", "-C", str(MCU_DIR), f"PYTHON={sys.executable}", *targets],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise BuildError(f"make {' '.join(targets)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr
