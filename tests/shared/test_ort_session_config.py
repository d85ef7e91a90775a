"""Every runner of the int8 models sets ``ORT_SESSION_CONFIG``.

On an x86 CPU without VNNI the reference models' golden outputs hold only with it
(tests/models/test_reference_models.py checks them on whatever CPU runs the suite); on a VNNI or ARM
CPU it changes nothing, so these tests are what keeps it set there.
"""

from __future__ import annotations

import onnxruntime as ort
import pytest

from cloud_hub.rollout.validate import validate_model
from edge_agent.config import RuntimeConfig
from edge_agent.model.runtime import ModelRuntime
from firmware_models import REFERENCE_DIR
from firmware_models.evaluate import session as toolchain_session
from firmware_models.manifest_check import check
from shared.manifest import MANIFEST_FILENAME, ORT_SESSION_CONFIG, load_manifest

MODEL_DIR = REFERENCE_DIR / "fomo-street"


def assert_configured(options: ort.SessionOptions) -> None:
    for key, value in ORT_SESSION_CONFIG.items():
        assert options.get_session_config_entry(key) == value, key


def test_the_int8_precision_entry_is_in_the_config():
    assert ORT_SESSION_CONFIG.get("session.x64quantprecision") == "1"


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
