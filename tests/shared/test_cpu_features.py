"""``shared.cpu_features``: the int8 features read from /proc/cpuinfo and the auxiliary vector."""

from __future__ import annotations

import platform
import struct
from pathlib import Path

import pytest

from shared.cpu_features import AT_HWCAP, AT_HWCAP2, auxv_hwcaps, cpuinfo_features, current, detect

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm

# Verbatim first-CPU lines of a Raspberry Pi 4 (Cortex-A72) and a Raspberry Pi 5 (Cortex-A76).
PI4 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"
PI5 = (
    "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics "
    "fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU part\t: 0xd0b\n"
)
NEOVERSE_V2 = "processor\t: 0\nFeatures\t: fp asimd asimddp sve i8mm bf16 sve2\n"
AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni avx_vnni amx_tile amx_int8\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def auxv(tmp_path: Path, **caps: int) -> Path:
    """An auxiliary vector as the kernel lays it out: (key, value) u64 pairs ending in AT_NULL."""
    keys = {"hwcap": AT_HWCAP, "hwcap2": AT_HWCAP2}
    data = struct.pack("<QQ", 6, 4096)  # AT_PAGESZ first, as in a real one
    data += b"".join(struct.pack("<QQ", keys[k], v) for k, v in caps.items()) + struct.pack("<QQ", 0, 0)
    path = tmp_path / "auxv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("machine", "text", "expected"),
    [
        ("aarch64", PI4, ("neon",)),
        ("aarch64", PI5, ("dotprod", "neon")),
        ("aarch64", NEOVERSE_V2, ("dotprod", "i8mm", "neon")),
        ("x86_64", AVX2_ONLY, ("avx2",)),
        ("x86_64", SAPPHIRE, ("amx_int8", "avx2", "avx512_vnni", "avx512bw", "avx_vnni")),
    ],
)
def test_features_from_cpuinfo(tmp_path, machine, text, expected):
    found = detect(machine, cpuinfo=write(tmp_path, text), auxv=tmp_path / "no-auxv")
    assert found.arch == machine and found.int8 == expected


def test_arm_reads_the_auxv_bits_before_cpuinfo(tmp_path):
    """Under QEMU user emulation /proc/cpuinfo is the host's (x86 flags); the auxv is the emulated CPU's."""
    host_cpuinfo = write(tmp_path, SAPPHIRE)
    pi4 = detect("aarch64", host_cpuinfo, auxv(tmp_path, hwcap=0b11))  # fp, asimd
    assert pi4.int8 == ("neon",)
    pi5 = detect("aarch64", host_cpuinfo, auxv(tmp_path, hwcap=0b11 | 1 << 20, hwcap2=0))
    assert pi5.int8 == ("dotprod", "neon")
    v2 = detect("aarch64", host_cpuinfo, auxv(tmp_path, hwcap=0b11 | 1 << 20, hwcap2=1 << 13))
    assert v2.int8 == ("dotprod", "i8mm", "neon")


def test_summary_names_the_kernel_family():
    from shared.cpu_features import CpuFeatures

    assert CpuFeatures("aarch64", ("neon",)).summary.endswith("(NEON widening multiply, no dot product)")
    assert CpuFeatures("aarch64", ("dotprod", "neon")).summary.endswith("(dot product)")
    assert CpuFeatures("x86_64", ("avx2",)).summary == "x86_64, int8 features: avx2 (no VNNI)"
    assert CpuFeatures("riscv64", ()).summary == "riscv64, int8 features: none found"


def test_missing_files_give_no_features(tmp_path):
    assert cpuinfo_features(tmp_path / "missing") is None and auxv_hwcaps(tmp_path / "missing") == {}
    assert detect("x86_64", tmp_path / "missing", tmp_path / "missing").int8 == ()
    assert detect("aarch64", tmp_path / "missing", tmp_path / "missing").int8 == ("neon",)


def test_this_machine_agrees_with_what_linux_prints():
    """The real /proc of the CPU running the suite (x86 here, aarch64 under QEMU in make test-arm)."""
    cpu = current()
    assert cpu.arch == platform.machine().lower()
    if cpu.arch == "x86_64":
        flags = cpuinfo_features() or set()
        assert ("avx512_vnni" in cpu.int8) is ("avx512_vnni" in flags)
        assert ("avx2" in cpu.int8) is ("avx2" in flags)
    elif cpu.arch == "aarch64":
        hwcap = auxv_hwcaps().get(AT_HWCAP)
        assert hwcap is not None and "neon" in cpu.int8
        assert ("dotprod" in cpu.int8) is bool(hwcap >> 20 & 1)
