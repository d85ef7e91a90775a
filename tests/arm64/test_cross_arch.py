"""The same detections on arm64 as on x86: every reference model, int8 bit for bit, fp32 within 1e-5.

In `make test-arm` the x86 host writes its outputs first (``tests/arm64/cross_arch.py``, including
models the toolchain quantizes at that moment) and points ``EDGESIGHT_X86_REFERENCE`` at them; this
module then runs in the aarch64 chroot as a Cortex-A72 (NEON), a Cortex-A76 (dot product) and QEMU's
``max`` core (i8mm). Run on x86 without that variable it writes the reference itself and checks the
agent's own sessions reproduce it and the committed golden files (the x86 half of the comparison).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest

from firmware_models import REFERENCE_DIR
from shared.manifest import load_manifest
from tests.arm64.cross_arch import (
    FP32_ATOL,
    Case,
    reference_cases,
    run_case,
    toolchain_cases,
    write_reference,
)

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm

REFERENCE_ENV = "EDGESIGHT_X86_REFERENCE"


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding reference.npz (and the toolchain's models/)."""
    given = os.environ.get(REFERENCE_ENV)
    if given:
        return Path(given)
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.fail(f"{REFERENCE_ENV} is not set: on {platform.machine()} there is no x86 reference")
    out = tmp_path_factory.mktemp("x86-reference")
    write_reference(out, toolchain=False)
    return out


@pytest.fixture(scope="module")
def reference(x86: Path) -> dict[str, np.ndarray]:
    with np.load(x86 / "reference.npz") as data:
        return {key: data[key] for key in data.files}


def cases_in(x86: Path) -> list[Case]:
    return reference_cases() + toolchain_cases(x86 / "models")


def compare(case: Case, reference: dict[str, np.ndarray]) -> None:
    prefix = f"{case.key}|"
    inputs = sorted({int(k.split("|")[1]) for k in reference if k.startswith(prefix)})
    assert inputs, f"no x86 reference for {case.key}"
    here = run_case(case, [reference[f"{prefix}{i}|input"] for i in inputs])
    for i in inputs:
        outputs = sorted(k for k in reference if k.startswith(f"{prefix}{i}|output_"))
        for key in outputs:
            got, want = here[key], reference[key]
            assert got.shape == want.shape and got.dtype == want.dtype, key
            if case.precision == "int8":
                diff = np.argwhere(got != want)
                assert diff.size == 0, f"{key}: {len(diff)} values differ from x86, first {diff[0].tolist()}"
            else:
                worst = float(np.abs(got - want).max())
                assert worst <= FP32_ATOL, f"{key}: differs from x86 by {worst:.3g} (> {FP32_ATOL})"
        got_dets = json.loads(str(here[f"{prefix}{i}|detections"]))
        want_dets = json.loads(str(reference[f"{prefix}{i}|detections"]))
        if case.precision == "int8":
            assert got_dets == want_dets, f"{case.key} input {i}: detections differ from x86"
        else:
            assert [d[0] for d in got_dets] == [d[0] for d in want_dets], f"{case.key} input {i}: labels"
            flat = [[d[1], *d[2]] for d in got_dets], [[d[1], *d[2]] for d in want_dets]
            assert np.allclose(*flat, atol=FP32_ATOL, rtol=0), f"{case.key} input {i}: scores or boxes"


def test_the_reference_covers_every_committed_model(x86, reference):
    keys = {k.split("|")[0] for k in reference}
    committed = {p.parent.name for p in REFERENCE_DIR.glob("*/manifest.json")}
    assert committed and {f"{name}/int8" for name in committed} <= keys
    assert {f"{name}/fp32" for name in committed} <= keys
    assert any(json.loads(str(reference[k])) for k in reference if k.endswith("|detections")), (
        "no input gave a single detection: the comparison would prove little"
    )
    if os.environ.get(REFERENCE_ENV):  # make test-arm: the toolchain's fresh models are in it too
        made = {c.key for c in toolchain_cases(x86 / "models")}
        assert {"toolchain/fomo-street-rr0", "toolchain/fomo-street-rr1"} <= made <= keys


@pytest.mark.parametrize("case", reference_cases(), ids=lambda c: c.key)
def test_reference_models_match_x86(case, reference):
    compare(case, reference)


def test_toolchain_models_match_x86(x86, reference):
    """Models the toolchain quantized minutes ago on x86 (reduce_range off and on)."""
    cases = toolchain_cases(x86 / "models")
    if os.environ.get(REFERENCE_ENV):
        assert len(cases) == 2
    for case in cases:
        compare(case, reference)


@pytest.mark.parametrize("case", [c for c in reference_cases() if c.precision == "int8"], ids=lambda c: c.key)
def test_int8_golden_files_hold_bit_for_bit(case):
    """golden.npz was written on x86; the agent's session gives exactly the same on this CPU."""
    manifest, _ = load_manifest(case.model_dir)
    golden = np.load(case.model_dir / manifest.golden.file)
    outputs = case.runtime().infer(golden["input_0"])
    for j, out in enumerate(outputs):
        assert np.array_equal(out, golden[f"output_{j}"]), f"{case.key} output_{j}"


def test_manifests_record_the_int8_settings_checked_here():
    """The reference manifests say which quantization settings this module proves identical."""
    for model_dir in sorted(p.parent for p in REFERENCE_DIR.glob("*/manifest.json")):
        manifest, _ = load_manifest(model_dir)
        q = manifest.quantization
        assert q.get("reduce_range") is False, model_dir.name
        assert "make test-arm" in q.get("cross_arch", ""), model_dir.name
