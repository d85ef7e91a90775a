"""The hub's Ed25519 key pair (``cloud-hub keys init``): the private half signs every offer, agents get
the public half in their config."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.signing import generate_keypair, load_private_key

PRIVATE_NAME = "hub-ed25519.pem"
PUBLIC_NAME = "hub-ed25519.pub.pem"


class KeyError_(RuntimeError):
    """Keys missing or unreadable; the message says what to run."""


def key_dir(instance_path: str | Path) -> Path:
    return Path(instance_path) / "keys"


def init_keys(folder: Path, force: bool = False) -> tuple[Path, Path]:
    """Create the pair; an existing pair is kept unless ``force`` (rotating breaks every agent's trust)."""
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private.exists() and not force:
        raise KeyError_(
            f"{private} exists; use --force to replace it (agents must then get the new public key)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = generate_keypair()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    os.chmod(private, 0o600)
    public.write_bytes(public_pem)
    return private, public


def load_signing_key(folder: Path) -> Ed25519PrivateKey:
    path = folder / PRIVATE_NAME
    if not path.exists():
        raise KeyError_(f"no signing key at {path}: run `cloud-hub keys init`")
    return load_private_key(path.read_bytes())
