"""Which int8 instructions this CPU has, so the hub can pick the model variant that runs fast on it.

onnxruntime's int8 kernels depend on them: on ARM, NEON alone (Cortex-A72, Raspberry Pi 4) widens and
adds, the dot-product instructions (``asimddp``: SDOT/UDOT, Cortex-A76, Raspberry Pi 5) do four products
per lane, and i8mm (SMMLA/USMMLA, Armv8.6) multiplies 2x8 by 8x2 blocks. On x86, AVX2 (VPMADDUBSW,
16-bit sums that saturate), AVX-512 VNNI / AVX-VNNI (VPDPBUSD, 32-bit sums) and AMX-INT8.

Linux names them in /proc/cpuinfo (``Features`` on ARM, ``flags`` on x86). Under QEMU user emulation
/proc/cpuinfo is the host's, so on ARM the kernel's hardware capability bits in /proc/self/auxv (which
QEMU emulates for the CPU model it runs) are read first.
"""

from __future__ import annotations

import functools
import platform
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ARM64_MACHINES = frozenset({"aarch64", "arm64", "armv8l"})
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})

# Our names for the features the int8 kernels use, from the names Linux prints.
ARM_CPUINFO_NAMES = {"asimd": "neon", "neon": "neon", "asimddp": "dotprod", "i8mm": "i8mm"}
X86_CPUINFO_NAMES = {
    "avx2": "avx2",
    "avx512bw": "avx512bw",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "amx_int8": "amx_int8",
}
# The kernel's AT_HWCAP / AT_HWCAP2 bits on arm64 (arch/arm64/include/uapi/asm/hwcap.h).
AT_HWCAP, AT_HWCAP2 = 16, 26
ARM_HWCAP_BITS = {(AT_HWCAP, 1): "neon", (AT_HWCAP, 20): "dotprod", (AT_HWCAP2, 13): "i8mm"}
# Any of these multiplies u8 x s8 with 32-bit sums: onnxruntime's fast int8 kernel is exact there.
X86_EXACT_U8S8 = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@dataclass(frozen=True)
class CpuFeatures:
    """The machine (``aarch64``, ``x86_64``) and its int8 features in our names, sorted."""

    arch: str
    int8: tuple[str, ...]

    @property
    def summary(self) -> str:
        """One line for ``edge-agent check``."""
        names = ", ".join(self.int8) if self.int8 else "none found"
        return f"{self.arch}, int8 features: {names}{self._kernel_note()}"

    def _kernel_note(self) -> str:
        if self.arch in ARM64_MACHINES:
            if "i8mm" in self.int8:
                return " (i8mm matrix multiply)"
            return " (dot product)" if "dotprod" in self.int8 else " (NEON widening multiply, no dot product)"
        if self.arch in X86_MACHINES:
            return " (VNNI, exact u8 x s8)" if X86_EXACT_U8S8 & set(self.int8) else " (no VNNI)"
        return ""


def cpuinfo_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The first CPU's feature names (``flags`` on x86, ``Features`` on ARM); None if there are none."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


def auxv_hwcaps(auxv: Path = Path("/proc/self/auxv")) -> dict[int, int]:
    """The auxiliary vector's entries (64-bit little-endian pairs); empty where it cannot be read."""
    try:
        data = auxv.read_bytes()
    except OSError:
        return {}
    entries: dict[int, int] = {}
    for key, value in struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]):
        if key == 0:
            break
        entries[key] = value
    return entries


def _named(flags: Iterable[str], names: dict[str, str]) -> set[str]:
    return {names[f] for f in flags if f in names}


def detect(
    machine: str | None = None,
    cpuinfo: Path = Path("/proc/cpuinfo"),
    auxv: Path = Path("/proc/self/auxv"),
) -> CpuFeatures:
    """This CPU's int8 features. ARM: the auxv bits, else /proc/cpuinfo; x86: /proc/cpuinfo flags."""
    arch = (machine or platform.machine()).lower()
    found: set[str] = set()
    if arch in ARM64_MACHINES:
        caps = auxv_hwcaps(auxv)
        if AT_HWCAP in caps:
            found = {name for (key, bit), name in ARM_HWCAP_BITS.items() if caps.get(key, 0) >> bit & 1}
        else:
            found = _named(cpuinfo_features(cpuinfo) or (), ARM_CPUINFO_NAMES)
        found.add("neon")  # Advanced SIMD is mandatory in Armv8-A
    elif arch in X86_MACHINES:
        found = _named(cpuinfo_features(cpuinfo) or (), X86_CPUINFO_NAMES)
    return CpuFeatures(arch=arch, int8=tuple(sorted(found)))


@functools.cache
def current() -> CpuFeatures:
    """This process's CPU, read once (it does not change while we run)."""
    return detect()
