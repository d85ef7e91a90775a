"""The model registry: validate, bundle, store under the bundle's sha256, record, sign.

Blobs live in ``<instance>/models/blobs/<sha256>.zip`` (content-addressed: the same bytes are stored
once, a name never points at changed bytes). A version of a name is registered once; registering the
same bytes again is a no-op, different bytes under an existing version are refused.

A version may be scoped to one device (``device_scope``: a site-adapted model is for the camera whose
view it was trained on); the scope is part of the signed record, so a scope changed in the database no
longer verifies and campaigns refuse the model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.rollout.models import MODEL_KINDS, STUDENT, TEACHER, ModelVersion
from cloud_hub.rollout.validate import ModelRejected, validate_model
from shared.manifest import ModelManifest
from shared.payloads import DEVICE_ID_PATTERN
from shared.rollout import bundle_members, semver_key
from shared.signing import SignatureError, sign, verify

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # deterministic zips: same files, same bytes, same sha256


def blob_dir(instance_path: str | Path) -> Path:
    return Path(instance_path) / "models" / "blobs"


def blob_path(folder: Path, sha256: str) -> Path:
    return folder / f"{sha256}.zip"


def build_bundle(folder: Path, manifest: ModelManifest) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name in bundle_members(manifest.model_dump(mode="json", exclude_none=True)):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, (folder / name).read_bytes())
    return buffer.getvalue()


def record_bytes(name: str, version: str, sha256: str, size: int, manifest: dict,
                 device_scope: str | None = None) -> bytes:
    """The canonical registry record the hub signs. ``device_scope`` is in it only when set, so the
    records (and signatures) of fleet-wide versions are those signed before scopes existed."""
    body: dict = {"name": name, "version": version, "sha256": sha256, "size_bytes": size,
                  "manifest": manifest}
    if device_scope is not None:
        body["device_scope"] = device_scope
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def row_bytes(row: ModelVersion) -> bytes:
    return record_bytes(row.name, row.version, row.sha256, row.size_bytes, row.manifest, row.device_scope)


class RecordTampered(ValueError):
    """A registry row does not match the hub's signature over it: it was changed after registering."""


def verify_record(row: ModelVersion, public_key: Ed25519PublicKey) -> None:
    """Raise RecordTampered unless ``row`` (its content and scope) is what the hub signed."""
    try:
        verify(public_key, row_bytes(row), row.signature)
    except SignatureError as exc:
        raise RecordTampered(
            f"{row.ref}: the registry record does not match its signature ({exc}): it was changed after "
            "it was registered (or signed with another hub key); it is not offered"
        ) from None


def resign(db: Session, old_public: Ed25519PublicKey, new_key: Ed25519PrivateKey) -> tuple[int, list[str]]:
    """After a key rotation: sign again, with the new key, every record the old key still vouches for.
    A record that no longer verifies is left as it is (a rotation must not launder a tampered row);
    returns (re-signed count, refs left unverifiable)."""
    done, left = 0, []
    for row in db.scalars(select(ModelVersion)):
        try:
            verify_record(row, old_public)
        except RecordTampered:
            left.append(row.ref)
            continue
        row.signature = sign(new_key, row_bytes(row))
        done += 1
    db.commit()
    return done, left


def validate_scope(device_scope: str | None, kind: str) -> None:
    if device_scope is None:
        return
    if not re.fullmatch(DEVICE_ID_PATTERN, device_scope):
        raise ModelRejected(f"device scope {device_scope!r} is not a device id")
    if kind != STUDENT:
        raise ModelRejected(f"a {kind} model is never offered to a device: it cannot be scoped to one")


def register(
    db: Session, model_path: Path, manifest_path: Path, blobs: Path, key: Ed25519PrivateKey,
    kind: str = STUDENT, *, device_scope: str | None = None,
) -> tuple[ModelVersion, bool]:
    """Return (row, created). Raises ModelRejected with the reason when the model is not acceptable.

    ``kind`` teacher: a hub-side labeller (issue 24), validated and stored like any model but never
    offered to a device (campaigns refuse it, the chunk server never serves it). ``device_scope``: the
    one device this version may ever be offered to (None: any)."""
    if kind not in MODEL_KINDS:
        raise ModelRejected(f"unknown model kind {kind!r} (one of: {', '.join(MODEL_KINDS)})")
    validate_scope(device_scope, kind)
    manifest = validate_model(model_path, manifest_path, require_golden=kind != TEACHER)
    if manifest.golden is not None and not (model_path.parent / manifest.golden.file).exists():
        raise ModelRejected(f"golden file {manifest.golden.file} missing beside the model")
    data = build_bundle(model_path.parent, manifest)
    sha = hashlib.sha256(data).hexdigest()
    manifest_dict = manifest.model_dump(mode="json", exclude_none=True)
    existing = db.scalar(
        select(ModelVersion).where(
            ModelVersion.name == manifest.name, ModelVersion.version == manifest.version
        )
    )
    if existing is not None:
        if existing.kind != kind:
            raise ModelRejected(f"{manifest.ref} is already registered as a {existing.kind} model; a name "
                                "is either a student or a teacher")
        if existing.device_scope != device_scope:
            raise ModelRejected(f"{manifest.ref} is already registered {_scope_text(existing.device_scope)}; "
                                f"registering it {_scope_text(device_scope)} needs a new version")
        if existing.sha256 == sha and existing.manifest == manifest_dict:
            return existing, False
        raise ModelRejected(
            f"{manifest.ref} is already registered with different content (model, golden file or manifest); "
            "bump the version"
        )
    blobs.mkdir(parents=True, exist_ok=True)
    target = blob_path(blobs, sha)
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    row = ModelVersion(
        name=manifest.name,
        version=manifest.version,
        sha256=sha,
        size_bytes=len(data),
        model_sha256=manifest.sha256 or "",
        manifest=manifest_dict,
        created_at=time.time(),
        kind=kind,
        device_scope=device_scope,
        signature=sign(key, record_bytes(manifest.name, manifest.version, sha, len(data), manifest_dict,
                                         device_scope)),
    )
    db.add(row)
    db.commit()
    return row, True


def _scope_text(device_scope: str | None) -> str:
    return f"scoped to {device_scope}" if device_scope else "for every device"


def register_package(db: Session, folder: Path, blobs: Path, key: Ed25519PrivateKey,
                     kind: str = STUDENT, *, device_scope: str | None = None) -> tuple[ModelVersion, bool]:
    """Register a model package folder (``manifest.json`` beside the model file it names)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ModelRejected(f"{folder}: no manifest.json (a model package folder holds manifest.json and "
                            "the model it names)")
    try:
        name = json.loads(manifest_path.read_text()).get("file")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelRejected(f"{manifest_path}: not a JSON manifest: {exc}") from None
    if not isinstance(name, str) or not (folder / name).is_file():
        raise ModelRejected(f"{manifest_path}: model file {name!r} is missing beside it")
    return register(db, folder / name, manifest_path, blobs, key, kind, device_scope=device_scope)


def find(db: Session, ref: str) -> ModelVersion:
    """``name@version`` (or ``name`` for the newest version)."""
    name, _, version = ref.partition("@")
    rows = list(db.scalars(select(ModelVersion).where(ModelVersion.name == name)))
    if version:
        rows = [r for r in rows if r.version == version]
    if not rows:
        raise LookupError(f"no registered model {ref!r}")
    return max(rows, key=lambda r: semver_key(r.version))


def versions(db: Session, name: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion)
    if name:
        query = query.where(ModelVersion.name == name)
    return sorted(db.scalars(query), key=lambda r: (r.name, semver_key(r.version)))
