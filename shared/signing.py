"""Ed25519 signatures for model offers (cryptography's implementation, not a hand-rolled one).

The hub holds the private key; every agent is configured with the public key and refuses any offer
whose signature does not verify.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SignatureError(ValueError):
    pass


def generate_keypair() -> tuple[bytes, bytes]:
    """Return (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def load_private_key(pem: bytes | str | Path) -> Ed25519PrivateKey:
    data = Path(pem).read_bytes() if isinstance(pem, Path) else pem
    data = data.encode() if isinstance(data, str) else data
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("not an Ed25519 private key")
    return key


def load_public_key(pem: bytes | str | Path) -> Ed25519PublicKey:
    data = Path(pem).read_bytes() if isinstance(pem, Path) else pem
    data = data.encode() if isinstance(data, str) else data
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("not an Ed25519 public key")
    return key


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message)).decode()


def verify(public_key: Ed25519PublicKey, message: bytes, signature: str | None) -> None:
    """Raise SignatureError unless ``signature`` is a valid signature of ``message``."""
    if not signature:
        raise SignatureError("unsigned")
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, message)
    except (InvalidSignature, ValueError):
        raise SignatureError("bad signature") from None
