"""Device secrets: generated here, shown once, stored only as a salted PBKDF2-SHA512 hash.

The hash format is the one Mosquitto's dynamic security plugin stores (base64 hash, base64 salt,
iteration count), so the hub's database can rebuild the broker's client list without ever holding a
plain secret. Secrets are 256 random bits, so the iteration count protects nothing that brute force
could reach; it stays moderate to keep a fleet-wide reconnect cheap for the broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

SECRET_BYTES = 32
SALT_BYTES = 12
ITERATIONS = 1000
_ALGORITHM = "pbkdf2-sha512"


def new_secret() -> str:
    """A URL-safe random secret (43 characters, 256 bits): safe in YAML, env files and MQTT."""
    return secrets.token_urlsafe(SECRET_BYTES)


@dataclass(frozen=True)
class SecretHash:
    hash_b64: str
    salt_b64: str
    iterations: int

    def encode(self) -> str:
        """One string for a database column: ``pbkdf2-sha512$iterations$salt$hash``."""
        return f"{_ALGORITHM}${self.iterations}${self.salt_b64}${self.hash_b64}"

    @classmethod
    def decode(cls, text: str) -> SecretHash:
        algorithm, iterations, salt_b64, hash_b64 = text.split("$")
        if algorithm != _ALGORITHM:
            raise ValueError(f"unknown secret hash algorithm {algorithm!r}")
        return cls(hash_b64=hash_b64, salt_b64=salt_b64, iterations=int(iterations))

    def to_dynsec(self) -> dict[str, object]:
        return {"password": self.hash_b64, "salt": self.salt_b64, "iterations": self.iterations}


def _derive(secret: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, dklen=64)


def hash_secret(secret: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> SecretHash:
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = _derive(secret, salt, iterations)
    return SecretHash(base64.b64encode(digest).decode(), base64.b64encode(salt).decode(), iterations)


def verify_secret(secret: str, stored: SecretHash) -> bool:
    digest = _derive(secret, base64.b64decode(stored.salt_b64), stored.iterations)
    return hmac.compare_digest(digest, base64.b64decode(stored.hash_b64))
