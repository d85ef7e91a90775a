"""The onnxruntime session entry that keeps our int8 models exact on every CPU, and only where needed.

Our int8 models multiply u8 activations by s8 weights. x86 CPUs without VNNI (AVX2, or AVX-512 without
VNNI) do that with VPMADDUBSW, whose int16 sum of two products saturates: there fomo-street 2.1.1's
golden outputs differ by 0.55 (atol 0.1) and its centroid F1 falls from 0.938 to 0.900. onnxruntime's
``session.x64quantprecision`` turns s8 weights into u8 (a slower u8 x u8 kernel, exact), but it decides
by "are the u8u8 and u8s8 dispatch tables different", which is also true on AVX-512 VNNI CPUs, where
the fast kernel (VPDPBUSD, 32-bit sums) is already exact: measured on an AVX-512 VNNI EPYC, fomo-street
0.39 ms → 0.74 ms per inference for bit-identical outputs. So we ask for it only where the CPU cannot
multiply u8 x s8 exactly, and every runner (agent, hub validation, toolchain) uses the same answer.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable
from pathlib import Path

PRECISION_KEY = "session.x64quantprecision"
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
# Any of these gives onnxruntime a u8 x s8 kernel with 32-bit accumulation (VPDPBUSD or AMX TDPBUSD).
EXACT_U8S8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def u8s8_saturates(machine: str, flags: Iterable[str] | None) -> bool:
    """True where onnxruntime's fast u8 x s8 kernel can saturate. Unknown x86 flags count as saturating
    (the exact mode is only slower); ARM and other CPUs have no such kernel."""
    if machine.lower() not in X86_MACHINES:
        return False
    return flags is None or not (EXACT_U8S8_FLAGS & set(flags))


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The first CPU's feature flags as Linux reports them; None where there is no such file."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


@functools.cache
def ort_session_config() -> dict[str, str]:
    """Session config entries every runner of our int8 models sets (always the same keys, "0" or "1")."""
    return {PRECISION_KEY: "1" if u8s8_saturates(platform.machine(), cpu_flags()) else "0"}
