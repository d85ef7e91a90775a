"""The committed reference models: trusted through their manifests, int8 QDQ per-channel, and right on
freshly rendered samples they have never seen."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from firmware_models import REFERENCE_DIR
from firmware_models.data import MIN_VISIBLE
from firmware_models.evaluate import detections, runtime_for
from firmware_models.golden import check_golden
from firmware_models.manifest_check import check
from firmware_models.metrics import centroid_f1
from firmware_models.onnx_meta import get_props
from firmware_models.reference import REFERENCE_MODELS
from model_runtime.decoders import class_probabilities, named
from model_runtime.preprocessing import prepare
from shared.manifest import DecoderType, load_manifest, sha256_file
from synthetic_world import crop_samples, still_samples

NAMES = sorted(REFERENCE_MODELS)
FRESH_SEED = 777  # not a training, validation or test seed


@pytest.mark.parametrize("name", NAMES)
def test_manifest_matches_committed_file(name: str) -> None:
    manifest, model_path = load_manifest(REFERENCE_DIR / name)  # raises on sha256/size mismatch
    assert sha256_file(model_path) == manifest.sha256
    assert model_path.stat().st_size == manifest.size_bytes
    fp32 = model_path.parent / manifest.quantization["fp32_file"]
    assert sha256_file(fp32) == manifest.quantization["fp32_sha256"]
    assert [p for p in check(manifest, model_path) if not p.startswith("note:")] == []


@pytest.mark.parametrize("name", NAMES)
def test_int8_qdq_per_channel_with_metadata(name: str) -> None:
    manifest, model_path = load_manifest(REFERENCE_DIR / name)
    model = onnx.load(str(model_path))
    assert model.opset_import[0].version >= 17
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 3 and ops.count("DequantizeLinear") >= 3
    inits = {i.name: i for i in model.graph.initializer}
    per_channel = (
        [
            n
            for n in model.graph.node
            if n.op_type == "DequantizeLinear"
            and len(inits[n.input[1]].dims) == 1
            and inits[n.input[1]].dims[0] > 1
        ]
        if model.graph.initializer
        else []
    )
    assert per_channel, "weights are quantized per channel"
    props = get_props(model)
    assert json.loads(props["edgesight.labels"]) == list(manifest.labels)
    assert json.loads(props["edgesight.input"])["shape"] == list(manifest.input.shape)
    assert json.loads(props["edgesight.decoder"])["score_threshold"] == manifest.decoder.score_threshold
    if name == "fomo-street":
        assert manifest.size_bytes <= 150 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_golden_outputs_reproduce(name: str) -> None:
    manifest, model_path = load_manifest(REFERENCE_DIR / name)
    assert check_golden(model_path, manifest) <= manifest.golden.atol


def test_crop_classifier_classifies_fresh_crops() -> None:
    manifest, model_path = load_manifest(REFERENCE_DIR / "crop-classifier")
    assert manifest.decoder.type == DecoderType.CLASSIFIER and manifest.decoder.apply_softmax
    rt = runtime_for(model_path, manifest)
    x, y = crop_samples(FRESH_SEED, 25, size=manifest.input.height, labels=manifest.labels)
    predicted = np.array(
        [
            int(
                np.argmax(
                    class_probabilities(named(rt.infer(prepare(c, manifest.input)), manifest), manifest)
                )
            )
            for c in x
        ]
    )
    assert np.mean(predicted == y) >= 0.9
    for k in range(len(manifest.labels)):
        assert np.mean(predicted[y == k] == k) >= 0.8, manifest.labels[k]


def test_fomo_street_finds_objects_in_fresh_frames() -> None:
    manifest, model_path = load_manifest(REFERENCE_DIR / "fomo-street")
    dec = manifest.decoder
    assert (dec.type, dec.background_index, dec.apply_softmax) == (DecoderType.FOMO, 0, False)
    rt = runtime_for(model_path, manifest)
    frames = list(still_samples(FRESH_SEED, 40))
    outputs = [rt.infer(prepare(img, manifest.input)) for img, _ in frames]
    probs = outputs[0][0]
    grid = tuple(dec.params["grid"])
    assert probs.shape == (1, len(manifest.labels), *grid)
    assert grid == (
        manifest.input.height // dec.params["stride"],
        manifest.input.width // dec.params["stride"],
    )
    assert np.allclose(probs.sum(axis=1), 1.0, atol=0.02), "softmax is inside the model"
    dets = detections(outputs, manifest, [img for img, _ in frames])
    result = centroid_f1(dets, [t for _, t in frames], manifest.labels, grid)
    assert result["value"] >= 0.85, result
    busy = max(range(len(frames)), key=lambda i: sum(o.visible >= MIN_VISIBLE for o in frames[i][1]))
    assert len(dets[busy]) >= 2
