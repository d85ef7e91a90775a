"""Manifest facts carried inside the ONNX file (``metadata_props``) so a model file explains itself."""

from __future__ import annotations

import json

import onnx

from shared.manifest import ModelManifest

KEYS = ("edgesight.name", "edgesight.version", "edgesight.labels", "edgesight.input", "edgesight.decoder")


def manifest_props(manifest: ModelManifest) -> dict[str, str]:
    return {
        "edgesight.name": manifest.name,
        "edgesight.version": manifest.version,
        "edgesight.labels": json.dumps(list(manifest.labels)),
        "edgesight.input": manifest.input.model_dump_json(),
        "edgesight.decoder": manifest.decoder.model_dump_json(),
    }


def set_props(model: onnx.ModelProto, props: dict[str, str]) -> onnx.ModelProto:
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model


def get_props(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
