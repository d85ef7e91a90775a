"""Checks on an offer before a single byte is requested: signature first, then consistency, then version.

The order matters: nothing in an unsigned or badly signed offer is believed, not even its version.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.manifest import ManifestError, ModelManifest, parse_manifest
from shared.payloads import ModelOffer
from shared.rollout import semver_key
from shared.signing import SignatureError, verify


class OfferRejected(ValueError):
    """The offer must not be acted on; ``str(exc)`` is the reason reported as FAILED."""


def verify_offer(offer: ModelOffer, public_key: Ed25519PublicKey) -> ModelManifest:
    """Signature over ``offer.signed_bytes()``, then the manifest agrees with the offer."""
    try:
        verify(public_key, offer.signed_bytes(), offer.signature)
    except SignatureError as exc:
        raise OfferRejected(f"signature: {exc}") from None
    try:
        manifest = parse_manifest(offer.manifest, source="offer manifest")
    except ManifestError as exc:
        raise OfferRejected(f"manifest: {exc}") from None
    if (manifest.name, manifest.version) != (offer.name, offer.version):
        raise OfferRejected(f"manifest is {manifest.ref}, offer says {offer.name}@{offer.version}")
    if manifest.sha256 is None or manifest.golden is None:
        raise OfferRejected("manifest lacks sha256 or golden spec: the model cannot be verified on device")
    return manifest


def check_scope(offer: ModelOffer, device_id: str) -> None:
    """A signed offer scoped to another device (a model adapted to that camera's view) is not for this
    one: a hub that mis-addressed it, or an offer copied from another device's topic, installs nothing."""
    if offer.device_scope is not None and offer.device_scope != device_id:
        raise OfferRejected(
            f"{offer.name}@{offer.version} is scoped to {offer.device_scope} (adapted to its view); "
            f"this device is {device_id}: not installed"
        )


def check_version(offer: ModelOffer, manifest: ModelManifest, running: ModelManifest | None) -> None:
    """No downgrade below the running version of the same model unless the offer is a signed rollback;
    never different bytes under the version that is running."""
    if running is None or running.name != offer.name:
        return
    if offer.version == running.version and manifest.sha256 != running.sha256:
        raise OfferRejected(f"version {offer.version} is running with different content")
    if semver_key(offer.version) < semver_key(running.version) and not offer.rollback:
        raise OfferRejected(
            f"downgrade refused: {offer.version} < running {running.version} (not a rollback)"
        )
