"""What a device runs, said out loud: an int8 model in onnxruntime's slow exact mode is named and
warned about at load; the hub refuses models whose weights are also graph inputs (slower everywhere)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cloud_hub.rollout.validate import ModelRejected, validate_model
from firmware_models import REFERENCE_DIR
from model_runtime import ModelRuntime, SessionSettings
from tests.models.quirk_zoo import Quirks, build


def test_int8_in_exact_mode_is_named_and_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="model_runtime.runtime"):
        exact = ModelRuntime(REFERENCE_DIR / "fomo-street", SessionSettings(precision="exact"))
    assert exact.int8_exact_mode and exact.variant == "int8 (exact mode)"
    assert "fomo-street@2.1.1+fp32 variant may be the faster choice" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="model_runtime.runtime"):
        fast = ModelRuntime(REFERENCE_DIR / "fomo-street", SessionSettings(precision="fast"))
    assert not fast.int8_exact_mode and fast.variant == "int8" and "exact u8 x u8" not in caplog.text


def test_the_hub_refuses_weights_listed_as_graph_inputs(tmp_path: Path) -> None:
    model = build(tmp_path / "model.onnx", Quirks(initializers_as_inputs=True))
    manifest = {
        "name": "quirky",
        "version": "1.0.0",
        "task": "detection",
        "input": {"name": "input", "shape": [1, 3, 16, 16]},
        "outputs": [{"name": "boxes", "role": "boxes"}, {"name": "scores", "role": "scores"}],
        "decoder": {"type": "ssd"},
        "labels": ["a", "b", "c"],
        "precision": "fp32",
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelRejected, match="weights are also graph inputs.*firmware_models import"):
        validate_model(model, tmp_path / "manifest.json")
