"""Site adaptation test helpers: a hub with keys, a registered student and teacher, a device that runs the
student, and a finished capture of real frames from a real clip (``../shared/data/video``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
from flask import Flask
from sqlalchemy.orm import Session

from cloud_hub.capture.models import Capture, CaptureFrame
from cloud_hub.models import Device
from cloud_hub.rollout.keys import init_keys, key_dir, load_signing_key
from cloud_hub.rollout.models import STUDENT, TEACHER, ModelVersion
from cloud_hub.rollout.registry import blob_dir, register_package
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web.database import ENGINE_KEY
from firmware_models.golden import write_golden
from firmware_models.teachers import PERSON_CLIP, import_teacher, video_dir
from shared.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
FOMO = REPO / "firmware_models" / "reference" / "fomo-street"


def keys(app: Flask) -> None:
    folder = key_dir(app.instance_path)
    if not (folder / "hub-ed25519.pem").exists():
        init_keys(folder)


def register(app: Flask, folder: Path, kind: str = STUDENT) -> ModelVersion:
    keys(app)
    with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
        row, _ = register_package(
            db, folder, blob_dir(app.instance_path), load_signing_key(key_dir(app.instance_path)), kind
        )
        return row


def teacher_package(tmp_path: Path, name: str = "yolox-nano") -> Path:
    """A real COCO teacher imported the way an operator does, as a package folder with its golden
    self-test (one real frame), ready for the registry."""
    out = tmp_path / f"teacher-{name}"
    if not (out / "manifest.json").exists():
        import_teacher(name, out)
        manifest, model = load_manifest(out)  # the registry wants a golden self-test: one real frame
        spec = write_golden(model, manifest, clip_frames(1)[0])
        data = json.loads((out / "manifest.json").read_text())
        data["golden"] = spec.model_dump(mode="json", exclude_none=True)
        (out / "manifest.json").write_text(json.dumps(data, indent=2))
    return out


def real_teacher(app: Flask, tmp_path: Path, name: str = "yolox-nano") -> ModelVersion:
    """A real COCO teacher, registered as a teacher."""
    return register(app, teacher_package(tmp_path, name), TEACHER)


def device(
    app: Flask, device_id: str = "cam-1", model: str | None = "fomo-street@2.1.1", state: str = "online"
) -> None:
    with Session(app.extensions[ENGINE_KEY]) as db:
        now = time.time()
        db.merge(Device(id=device_id, first_seen=now, last_seen=now, state=state, model=model))
        db.commit()


def clip_frames(count: int, clip: str = PERSON_CLIP, step: int = 3) -> list:
    """``count`` frames of a real clip, every ``step``-th, in order."""
    cap = cv2.VideoCapture(str(video_dir() / clip))
    frames, n = [], 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if n % step == 0:
            frames.append(frame)
        n += 1
    cap.release()
    assert len(frames) == count, f"{clip}: only {len(frames)} frames"
    return frames


def finished_capture(app: Flask, capture_id: str, frames: list, device_id: str = "cam-1") -> str:
    """A complete capture holding ``frames`` as JPEGs in the snapshot store, one second apart."""
    store = SnapshotStore(app.config["HUB_SETTINGS"].snapshot_dir)
    now = time.time()
    with Session(app.extensions[ENGINE_KEY]) as db:
        db.add(
            Capture(
                id=capture_id,
                device_id=device_id,
                requested_by="admin",
                requested_at=now,
                count=len(frames),
                interval_s=1,
                max_bytes=256 * 1024,
                mode="uniform",
                timeout_s=60,
                state="complete",
                rejected_frames=[],
                frames_received=len(frames),
                device_captured=len(frames),
                last_progress_at=now,
                finished_at=now,
            )
        )
        db.flush()
        for i, frame in enumerate(frames):
            data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            sha, rel = store.put(data)
            db.add(
                CaptureFrame(
                    capture_id=capture_id,
                    frame=i,
                    ts=now - len(frames) + i,
                    width=frame.shape[1],
                    height=frame.shape[0],
                    sha256=sha,
                    path=rel,
                    size_bytes=len(data),
                    received_at=now,
                )
            )
        db.commit()
    return capture_id


def people_clip(tmp_path: Path) -> Path:
    """The real clip from its 7.5th second on (before that the hall is empty: nothing to learn from),
    55 s of it, as the mp4 the agent plays (the frames are the clip's own)."""
    source = cv2.VideoCapture(str(video_dir() / PERSON_CLIP))
    fps = source.get(cv2.CAP_PROP_FPS)
    source.set(cv2.CAP_PROP_POS_FRAMES, int(7.5 * fps))
    path = tmp_path / "hall-people.mp4"
    writer = None
    for _ in range(int(55 * fps)):
        ok, frame = source.read()
        if not ok:
            break
        if writer is None:
            size = (frame.shape[1], frame.shape[0])
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        writer.write(frame)
    source.release()
    assert writer is not None
    writer.release()
    return path


def site_agent_config(tmp_path: Path, mqtt_url: str, public_key: Path) -> dict:
    """A real agent ``site-cam`` playing the people clip with fomo-street on every frame (no motion gate),
    trusting the hub's key, shadow-testing half of the frames."""
    return {
        "device": {"id": "site-cam"},
        "mqtt": {"url": mqtt_url, "reconnect_min_s": 1, "reconnect_max_s": 1},
        "outbox": {"path": str(tmp_path / "agent" / "outbox.db")},
        "telemetry": {"interval_s": 1},
        "cameras": [
            {
                "name": "hall",
                "source": {"type": "file", "path": str(people_clip(tmp_path)), "loop": True},
                "detect_fps": 10,
                "motion": {"enabled": False},  # the CNN (and its shadow) on every processed frame
                "model": {"path": str(FOMO)},
                "lines": [{"name": "middle", "a": [0.5, 0.0], "b": [0.5, 1.0]}],
            }
        ],
        "updater": {
            "store_dir": str(tmp_path / "agent" / "models"),
            "hub_public_key": str(public_key),
            "health": {"min_inferences": 10, "max_latency_ratio": None},
            "shadow": {"sample_rate": 0.5, "report_every": 5},
        },
    }
