"""The part's budgets and what the firmware uses of them: flash, peak RAM, instructions per inference.

The linker script (mcu/board/mps2_an500.ld) holds the limits and fails the link past them; these
numbers are the report. Flash is what the image occupies (code, read-only data with the model, the
initial values of .data). Peak RAM is static RAM (.data + .bss: the tensor arena, the event ring, the
MQTT buffers) plus the stack's high-water mark, measured by the firmware from a painted stack.
Instructions come from QEMU's ``-icount shift=0`` (one instruction per virtual nanosecond), read with
SysTick and calibrated on the board with a loop of a known instruction count; instructions, not cycles.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .build import MCU_DIR

LINKER_SCRIPT = MCU_DIR / "board" / "mps2_an500.ld"
CALIBRATION_INSTRUCTIONS = 2_000_000  # board_calibrate(1000000): a two-instruction loop


def limits(script: Path = LINKER_SCRIPT) -> dict[str, int]:
    """FLASH and RAM lengths from the linker script, in bytes."""
    out = {}
    for name, size, unit in re.findall(
        r"(FLASH|RAM)\s*\([a-z]+\)\s*:\s*ORIGIN\s*=\s*\w+,\s*LENGTH\s*=\s*(\d+)([KM]?)", script.read_text()
    ):
        out[name] = int(size) * {"": 1, "K": 1024, "M": 1024 * 1024}[unit]
    return out


def sections(elf: Path) -> dict[str, int]:
    """Section sizes of the firmware, from ``arm-none-eabi-size -A``."""
    text = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class Usage:
    flash_bytes: int
    static_ram_bytes: int
    stack_high_water_bytes: int
    stack_reserved_bytes: int
    ram_peak_bytes: int
    flash_limit: int
    ram_limit: int


def usage(elf: Path, stats: dict) -> Usage:
    s = sections(elf)
    lim = limits()
    flash = s.get(".text", 0) + s.get(".ARM.exidx", 0) + s.get(".data", 0)
    static = s.get(".data", 0) + s.get(".bss", 0)
    if static != stats["static_ram"]:
        raise ValueError(f"the firmware reports {stats['static_ram']} B of static RAM, the ELF {static} B")
    return Usage(
        flash,
        static,
        int(stats["stack_high_water"]),
        s.get(".stack", 0),
        static + int(stats["stack_high_water"]),
        lim["FLASH"],
        lim["RAM"],
    )


def instructions(ticks: float, stats: dict) -> float:
    """SysTick ticks (under ``-icount shift=0``) → instructions, by the board's own calibration."""
    return ticks * CALIBRATION_INSTRUCTIONS / int(stats["calib_ticks_2M"])
