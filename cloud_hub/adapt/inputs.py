"""What a job feeds adapt(): registered models as directories, and the capture's frames in time order."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.capture.models import CaptureFrame
from cloud_hub.rollout.models import ModelVersion
from cloud_hub.rollout.registry import blob_path
from cloud_hub.snapshots import SnapshotStore
from shared.rollout import bundle_members

TRAIN_SHARE = 0.6  # earlier frames train, later frames judge


class InputError(ValueError):
    """A model or the frames a job needs are not usable; the message is the job's reason."""


def materialize(db: Session, ref: str, blobs: Path, folder: Path) -> Path:
    """The registered model ``name@version`` as a model directory (manifest.json, model, golden file),
    unpacked from its stored bundle after checking the bundle's sha256 against the registry."""
    name, _, version = ref.partition("@")
    row = db.scalar(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))
    if row is None:
        raise InputError(f"model {ref} is no longer in the registry")
    blob = blob_path(blobs, row.sha256)
    if not blob.is_file():
        raise InputError(f"model {ref}: its stored bundle {blob.name} is missing from the registry")
    data = blob.read_bytes()
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise InputError(f"model {ref}: its stored bundle does not match the registered sha256")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with zipfile.ZipFile(blob) as bundle:
        for member in bundle_members(row.manifest):
            if "/" in member or member.startswith("."):
                raise InputError(f"model {ref}: bundle member {member!r} is not a plain file name")
            (folder / member).write_bytes(bundle.read(member))
    (folder / "manifest.json").write_text(json.dumps(row.manifest, indent=2))
    return folder


def capture_frames(db: Session, capture_id: str, snapshots: SnapshotStore) -> tuple[list[np.ndarray], int]:
    """BGR frames of a capture in the order the device took them, and how many could not be read
    (deleted by retention, or not decodable)."""
    rows = db.scalars(
        select(CaptureFrame)
        .where(CaptureFrame.capture_id == capture_id)
        .order_by(CaptureFrame.ts, CaptureFrame.frame)
    )
    frames, missing = [], 0
    for row in rows:
        path = snapshots.resolve(row.path)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path is not None else None
        if image is None:
            missing += 1
            continue
        frames.append(image)
    return frames, missing


def split_by_time(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Earlier 60 % to train on, later 40 % to judge on: the judge frames are never seen in training."""
    cut = int(round(len(frames) * TRAIN_SHARE))
    return frames[:cut], frames[cut:]
