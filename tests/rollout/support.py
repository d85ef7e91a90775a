"""Helpers for rollout tests: honest derivations of the committed reference models, signed offers, a
plain-paho "hub" that serves chunks with the real ChunkServer, and a state recorder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import paho.mqtt.client as mqtt
from onnx import numpy_helper

from cloud_hub.rollout.chunks import ChunkGrant, ChunkServer
from cloud_hub.rollout.registry import build_bundle
from shared.manifest import load_manifest, parse_manifest, sha256_file
from shared.payloads import ModelOffer, ModelStatePayload
from shared.signing import sign
from shared.topics import TopicKind, Topics

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(os.environ.get("EDGESIGHT_REFERENCE_MODELS", REPO / "firmware_models" / "reference"))
TOPICS = Topics()


def reference(name: str = "fomo-street") -> Path:
    folder = REFERENCE / name
    assert (folder / "manifest.json").exists(), f"committed reference model missing: {folder}"
    return folder


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll until ``predicate`` is truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ------------------------------------------------------------------------------- derived models
def repackage(
    src: Path,
    dst: Path,
    version: str,
    manifest_changes: dict[str, Any] | None = None,
    model_file: Path | None = None,
) -> Path:
    """The same model (or ``model_file``) with a new version and optional manifest edits."""
    dst.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((src / "manifest.json").read_text())
    shutil.copyfile(model_file or src / manifest["file"], dst / manifest["file"])
    if manifest.get("golden"):
        shutil.copyfile(src / manifest["golden"]["file"], dst / manifest["golden"]["file"])
    for key, value in (manifest_changes or {}).items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    manifest["version"] = version
    manifest["sha256"] = sha256_file(dst / manifest["file"])
    manifest["size_bytes"] = (dst / manifest["file"]).stat().st_size
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    parse_manifest(manifest)
    return dst


def broken_export(src: Path, dst: Path, version: str) -> Path:
    """A botched export: the output layer's channels rotated by one (the class order scrambled, as a
    wrong label map in a conversion script does). Its golden file is the original's, so the outputs
    no longer match it."""
    model = onnx.load(str(src / "model.onnx"))
    weights = [t for t in model.graph.initializer if len(t.dims) > 1]
    prefix = weights[-1].name.rsplit(".", 1)[0] + "."
    classes = weights[-1].dims[0]
    for tensor in model.graph.initializer:
        if tensor.name.startswith(prefix) and tensor.dims and tensor.dims[0] == classes:
            tensor.CopyFrom(
                numpy_helper.from_array(np.roll(numpy_helper.to_array(tensor), 1, axis=0), tensor.name)
            )
    dst.mkdir(parents=True, exist_ok=True)
    tmp = dst / "broken.onnx"
    onnx.save(model, str(tmp))
    out = repackage(src, dst, version, model_file=tmp)
    tmp.unlink()
    return out


def bundle_of(model_dir: Path) -> tuple[bytes, str, dict]:
    manifest, _ = load_manifest(model_dir)
    data = build_bundle(model_dir, manifest)
    return data, hashlib.sha256(data).hexdigest(), manifest.model_dump(mode="json", exclude_none=True)


def make_offer(
    key,
    model_dir: Path,
    campaign_id: str = "c-test",
    chunk_size: int = 32 * 1024,
    rollback: bool = False,
    shadow: bool = False,
    signed: bool = True,
    device_scope: str | None = None,
) -> tuple[ModelOffer, bytes]:
    data, sha, manifest = bundle_of(model_dir)
    offer = ModelOffer(
        campaign_id=campaign_id,
        name=manifest["name"],
        version=manifest["version"],
        sha256=sha,
        size_bytes=len(data),
        chunk_size=chunk_size,
        manifest=manifest,
        rollback=rollback,
        shadow=shadow,
        device_scope=device_scope,
    )
    if signed and key is not None:
        offer = offer.model_copy(update={"signature": sign(key, offer.signed_bytes())})
    return offer, data


# ---------------------------------------------------------------------------------- plain hub
class PlainHub:
    """A paho client playing the hub: retained offers, the real ChunkServer answering from files in
    ``folder``, every device's state reports recorded. ``tamper`` may rewrite a chunk in flight."""

    def __init__(self, host: str, port: int, folder: Path, max_bytes_per_s: float | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.offers: dict[str, ModelOffer] = {}
        self.states: list[ModelStatePayload] = []
        self.statuses: list[bytes] = []
        self.requests: list[tuple[str, int, int]] = []
        self.tamper: Callable[[str, bytes], bytes] | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain-hub")
        self.client.max_inflight_messages_set(200)
        self.server = ChunkServer(self._publish_chunk, self._grant, TOPICS, max_bytes_per_s).start()
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda c, *_: (
            c.subscribe(
                [
                    (self.server.request_filter, 1),
                    (TOPICS.all_devices(TopicKind.MODEL_STATE), 1),
                    (TOPICS.all_devices(TopicKind.STATUS), 1),
                ]
            ),
            connected.set(),
        )
        self.client.connect(host, port)
        self.client.loop_start()
        assert connected.wait(10)

    def close(self) -> None:
        self.server.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def offer(self, device_id: str, offer: ModelOffer | None, data: bytes | None = None) -> None:
        if offer is not None and data is not None:
            (self.folder / f"{offer.sha256}.zip").write_bytes(data)
        if offer is not None:
            self.offers[offer.campaign_id] = offer
        payload = offer.to_bytes() if offer is not None else b""
        self.client.publish(TOPICS.model_offer(device_id), payload, qos=1, retain=True).wait_for_publish(10)

    def _grant(self, device_id: str, request) -> ChunkGrant | None:
        offer = self.offers.get(request.campaign_id)
        with self._lock:
            self.requests.append((device_id, request.first, request.count))
        if offer is None or offer.sha256 != request.sha256:
            return None
        return ChunkGrant(self.folder / f"{offer.sha256}.zip", offer.size_bytes, offer.chunk_size)

    def _publish_chunk(self, topic: str, payload: bytes) -> None:
        if self.tamper is not None:
            payload = self.tamper(topic, payload)
        self.client.publish(topic, payload, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.endswith("/model/chunks/req"):
            self.server.on_request(msg.topic, msg.payload)
            return
        with self._lock:
            if msg.topic.endswith("/status"):
                self.statuses.append(msg.payload)
            else:
                self.states.append(ModelStatePayload.model_validate_json(msg.payload))

    def states_of(self, device_id: str) -> list[ModelStatePayload]:
        with self._lock:
            return [s for s in self.states if s.device_id == device_id]

    def outcome(self, device_id: str, campaign_id: str | None = None) -> ModelStatePayload | None:
        """The device's last terminal report (ACTIVE, FAILED, ROLLED_BACK), if any yet."""
        found = [
            s
            for s in self.states_of(device_id)
            if s.state.value in ("ACTIVE", "FAILED", "ROLLED_BACK")
            and (campaign_id is None or s.campaign_id == campaign_id)
        ]
        return found[-1] if found else None

    def last(self, device_id: str, state: str | None = None) -> ModelStatePayload | None:
        found = [s for s in self.states_of(device_id) if state is None or s.state.value == state]
        return found[-1] if found else None
