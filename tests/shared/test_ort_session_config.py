"""Every runner of the int8 models sets ``ort_session_config()``, and it is exact and only as slow as needed.

On an x86 CPU without VNNI the reference models' golden outputs hold only with the precise mode
(tests/models/test_reference_models.py checks them on whatever CPU runs the suite); on a VNNI CPU the
fast mode is already exact (checked here on this CPU) and the precise one only slower.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from cloud_hub.rollout.validate import validate_model
from edge_agent.config import RuntimeConfig
from firmware_models import REFERENCE_DIR
from firmware_models.evaluate import session as toolchain_session
from firmware_models.manifest_check import check
from model_runtime import ModelRuntime
from shared.int8_precision import PRECISION_KEY, cpu_flags, ort_session_config, u8s8_saturates
from shared.manifest import MANIFEST_FILENAME, load_manifest

MODEL_DIR = REFERENCE_DIR / "fomo-street"


def assert_configured(options: ort.SessionOptions) -> None:
    for key, value in ort_session_config().items():
        assert options.get_session_config_entry(key) == value, key


@pytest.mark.parametrize(
    ("machine", "flags", "saturates"),
    [
        ("x86_64", {"sse4_1", "avx2", "fma"}, True),  # AVX2 only: VPMADDUBSW
        ("x86_64", {"avx2", "avx512f", "avx512bw"}, True),  # AVX-512 without VNNI
        ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, False),
        ("x86_64", {"avx2", "avx_vnni"}, False),  # Alder Lake and later
        ("AMD64", None, True),  # flags unknown (no /proc/cpuinfo): the exact mode, only slower
        ("aarch64", None, False),
        ("armv7l", {"neon"}, False),
    ],
)
def test_which_cpus_need_the_precise_mode(machine, flags, saturates):
    assert u8s8_saturates(machine, flags) is saturates


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512_vnni\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "avx512_vnni"}
    assert cpu_flags(tmp_path / "missing") is None


def test_the_chosen_mode_is_bit_identical_to_the_precise_mode_on_this_cpu():
    """Whatever this CPU is, the entry we choose gives what the u8 x u8 kernel gives (exact)."""
    golden = np.load(MODEL_DIR / "golden.npz")
    _, model_path = load_manifest(MODEL_DIR)

    def run(precise: str) -> np.ndarray:
        opts = ort.SessionOptions()
        opts.add_session_config_entry(PRECISION_KEY, precise)
        sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: golden["input_0"]})[0]

    np.testing.assert_array_equal(run(ort_session_config()[PRECISION_KEY]), run("1"))


def test_the_agent_runtime_sets_it():
    runtime = ModelRuntime(MODEL_DIR, RuntimeConfig(warmup_runs=0))
    assert_configured(runtime.session.get_session_options())


def test_the_toolchain_evaluation_sets_it():
    _, model_path = load_manifest(MODEL_DIR)
    assert_configured(toolchain_session(model_path).get_session_options())


@pytest.fixture
def created_sessions(monkeypatch: pytest.MonkeyPatch) -> list[ort.InferenceSession]:
    """Records every InferenceSession the code under test creates (they are real sessions)."""
    made: list[ort.InferenceSession] = []
    real = ort.InferenceSession

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ort, "InferenceSession", recording)
    return made


def test_the_hub_validation_sets_it(created_sessions):
    _, model_path = load_manifest(MODEL_DIR)
    validate_model(model_path, MODEL_DIR / MANIFEST_FILENAME)
    assert created_sessions
    for sess in created_sessions:
        assert_configured(sess.get_session_options())


def test_the_manifest_check_sets_it(created_sessions):
    manifest, model_path = load_manifest(MODEL_DIR)
    assert [p for p in check(manifest, model_path) if not p.startswith("note:")] == []
    assert created_sessions
    for sess in created_sessions:
        assert_configured(sess.get_session_options())
