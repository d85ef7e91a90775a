"""The firmware on QEMU's mps2-an500 (Cortex-M7): bit-exact with onnxruntime, inside the part's budget."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from firmware_models.mcu_board import build
from firmware_models.mcu_board.budgets import instructions, limits, usage
from firmware_models.mcu_board.reference import OrtReference, compare_detections
from firmware_models.mcu_board.session import BoardSession

KB = 1024
pytestmark = pytest.mark.slow  # QEMU boots (seconds each)


def test_linker_script_is_the_parts_budget() -> None:
    assert limits() == {"FLASH": 512 * KB, "RAM": 256 * KB}


@pytest.mark.parametrize(
    ("extra", "region"),
    [
        ("unsigned char es_too_big[200 * 1024];", "RAM"),  # arena + this > 256 KB
        ("const unsigned char es_too_big[450 * 1024] = {1};", "FLASH"),  # model + this > 512 KB
    ],
)
def test_over_budget_firmware_does_not_link(board_build, tmp_path: Path, extra: str, region: str) -> None:
    src = tmp_path / "too_big.c"
    src.write_text(f"__attribute__((used)) {extra}\nvoid *es_keep(void) {{ return (void *)es_too_big; }}\n")
    elf = tmp_path / "too_big.elf"
    proc = subprocess.run(
        [
            "make",
            "-C",
            str(build.MCU_DIR),
            "board",
            f"FIRMWARE={elf}",
            f"BOARD_EXTRA={src}",
            "ARM_CFLAGS_EXTRA=-Wl,--undefined=es_keep",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and not elf.exists()
    assert f"region `{region}' overflowed" in proc.stderr, proc.stderr[-2000:]


def test_firmware_bit_exact_and_within_budget_on_qemu(
    board_build, reference: OrtReference, golden_pixels, clip_pixels
) -> None:
    frames = golden_pixels + clip_pixels[::4] + golden_pixels
    raw_bytes = int(np.prod(reference.run(frames[0])[0].shape))
    with BoardSession(raw_bytes=raw_bytes, icount=True) as board:
        board.configure(results=1)
        for i, pixels in enumerate(frames):
            board.feed(i, pixels)
        stats = board.finish()
        results = board.results
    assert [r.index for r in results] == list(range(len(frames)))
    found = 0
    for pixels, result in zip(frames, results, strict=True):
        want_raw, want_dets = reference.run(pixels)
        assert np.array_equal(result.raw, want_raw.reshape(-1)), f"frame {result.index}: raw tensor differs"
        assert compare_detections(result.detections, want_dets) == [], f"frame {result.index}"
        found += len(result.detections)
    assert found > 0
    use = usage(build.FIRMWARE, stats)
    assert use.flash_bytes <= 512 * KB and use.ram_peak_bytes <= 256 * KB
    assert 0 < use.stack_high_water_bytes < use.stack_reserved_bytes  # painted stack never ran out
    assert stats["arena_bytes"] < use.static_ram_bytes
    # -icount shift=0: 1 instruction per virtual ns, SysTick at 25 MHz → 40 instructions per tick.
    assert abs(2_000_000 / stats["calib_ticks_2M"] - 40) < 0.5
    # No broker configured: nothing is sent, so the ring keeps 16 events and the oldest give way.
    assert stats["events_made"] > 16 and stats["events_acked"] == 0
    assert stats["events_dropped"] == stats["events_made"] - 16
    per_inference = [instructions(r.ticks, stats) for r in results]
    assert all(1e8 < n < 2e9 for n in per_inference)
