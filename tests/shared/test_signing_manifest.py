"""Ed25519 signatures and manifest verification: what a device checks before trusting a model."""

import json
from pathlib import Path

import pytest

from shared.manifest import ManifestError, load_manifest, parse_manifest, sha256_file
from shared.signing import SignatureError, generate_keypair, load_private_key, load_public_key, sign, verify


def test_sign_and_verify() -> None:
    private_pem, public_pem = generate_keypair()
    key, pub = load_private_key(private_pem), load_public_key(public_pem)
    signature = sign(key, b"model bytes")
    verify(pub, b"model bytes", signature)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(pub, b"model bytez", signature)
    with pytest.raises(SignatureError, match="unsigned"):
        verify(pub, b"model bytes", None)
    other = load_public_key(generate_keypair()[1])
    with pytest.raises(SignatureError):
        verify(other, b"model bytes", signature)
    with pytest.raises(SignatureError):
        verify(pub, b"model bytes", "not base64!")


MANIFEST = {
    "name": "tiny",
    "version": "1.0.0",
    "task": "classification",
    "file": "model.onnx",
    "input": {"name": "input", "shape": [1, 3, 64, 64]},
    "outputs": [{"name": "logits"}],
    "decoder": {"type": "classifier", "background_index": 0, "apply_softmax": True},
    "labels": ["background", "person"],
}


def write_model(tmp_path: Path, payload: bytes = b"onnx-bytes") -> Path:
    (tmp_path / "model.onnx").write_bytes(payload)
    manifest = dict(MANIFEST, sha256=sha256_file(tmp_path / "model.onnx"), size_bytes=len(payload))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_load_manifest_verifies_the_file(tmp_path: Path) -> None:
    manifest, model_path = load_manifest(write_model(tmp_path))
    assert manifest.ref == "tiny@1.0.0"
    assert manifest.input.height == 64 and manifest.input.channels == 3
    assert model_path == tmp_path / "model.onnx"


def test_corrupt_model_is_refused(tmp_path: Path) -> None:
    write_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"onnx-bytez")
    with pytest.raises(ManifestError, match="sha256"):
        load_manifest(tmp_path)


def test_manifest_errors_name_the_field() -> None:
    bad = dict(MANIFEST, decoder={"type": "magic"})
    with pytest.raises(ManifestError, match=r"decoder\.type"):
        parse_manifest(bad, source="m.json")
    with pytest.raises(ManifestError, match="background_index"):
        parse_manifest(dict(MANIFEST, decoder={"type": "classifier", "background_index": 5}))
    with pytest.raises(ManifestError, match="version"):
        parse_manifest(dict(MANIFEST, version="latest"))
    with pytest.raises(ManifestError, match="invalid JSON"):
        parse_manifest(b"{", source="m.json")
