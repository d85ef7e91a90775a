"""What the hub sees of and changes on a camera: the low-rate preview frame and remote zone/line configs.

Preview: at most one small JPEG per ``preview.interval_s`` per camera (QoS 0, skipped while offline), with
the tracks' boxes of that frame and the geometry the rules run now. Off unless ``preview.enabled``.

Remote config (retained on ``config``): validated as strictly as the YAML file (the same pydantic models)
plus checks a file author would see by eye (a polygon whose edges cross, a zero-length line); applied
between two frames without a restart, or refused whole with the reason, the old geometry still running.
Either way the answer goes out retained on ``config/state``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from pydantic import ValidationError

from edge_agent.config import CameraConfig, PreviewConfig
from shared.camera import (
    MAX_PREVIEW_JPEG_BYTES,
    CameraGeometry,
    ConfigStateName,
    ConfigStatePayload,
    LineGeometry,
    PreviewBox,
    PreviewPayload,
    RemoteConfig,
    ZoneGeometry,
)
from shared.payloads import PayloadError, decode
from shared.topics import QOS_RELIABLE

if TYPE_CHECKING:
    from edge_agent.agent import Agent
    from edge_agent.pipeline import CameraPipeline

log = logging.getLogger(__name__)

MIN_LINE_LENGTH = 0.02
MIN_ZONE_AREA = 0.0005


class RemoteConfigRefused(ValueError):
    """A remote config this agent will not run; the message is what the operator reads."""


def geometry_of(camera: CameraConfig) -> CameraGeometry:
    return CameraGeometry(
        zones=[ZoneGeometry(name=z.name, polygon=[tuple(p) for p in z.polygon], labels=z.labels)
               for z in camera.zones],
        lines=[LineGeometry(name=ln.name, a=tuple(ln.a), b=tuple(ln.b), positive=ln.positive,
                            negative=ln.negative, labels=ln.labels) for ln in camera.lines],
    )


def _segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def _check_zone(zone: ZoneGeometry) -> None:
    pts = np.array(zone.polygon, dtype=np.float64)
    for p in zone.polygon:
        if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0):
            raise RemoteConfigRefused(
                f"zone {zone.name!r}: point {list(p)} is outside the frame (coordinates are 0..1)")
    if len(pts) < 3:
        raise RemoteConfigRefused(f"zone {zone.name!r}: a zone needs at least 3 points, got {len(pts)}")
    n = len(pts)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbouring edges share a corner
            if _segments_cross(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]):
                raise RemoteConfigRefused(
                    f"zone {zone.name!r}: its edges cross each other (edge {i + 1} and edge {j + 1}); "
                    "draw the outline without crossing")
    area = abs(float(cv2.contourArea(pts.astype(np.float32))))
    if area < MIN_ZONE_AREA:
        raise RemoteConfigRefused(f"zone {zone.name!r}: its area is {area:.5f} of the frame, too small to "
                                  f"decide anything (at least {MIN_ZONE_AREA})")


def _check_line(line: LineGeometry) -> None:
    for p in (line.a, line.b):
        if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0):
            raise RemoteConfigRefused(
                f"line {line.name!r}: point {list(p)} is outside the frame (coordinates are 0..1)")
    if float(np.hypot(line.b[0] - line.a[0], line.b[1] - line.a[1])) < MIN_LINE_LENGTH:
        raise RemoteConfigRefused(f"line {line.name!r}: shorter than {MIN_LINE_LENGTH} of the frame")
    if line.positive == line.negative:
        raise RemoteConfigRefused(f"line {line.name!r}: both directions are called {line.positive!r}")


def merged_camera(camera: CameraConfig, geometry: CameraGeometry) -> CameraConfig:
    """``camera`` with ``geometry``'s zones and lines; a zone or line keeping its name keeps its other
    settings (loiter time, margins). Raises RemoteConfigRefused with the operator-facing reason."""
    for zone in geometry.zones:
        _check_zone(zone)
    for line in geometry.lines:
        _check_line(line)
    old_zones = {z.name: z.model_dump() for z in camera.zones}
    old_lines = {ln.name: ln.model_dump() for ln in camera.lines}
    zones = [old_zones.get(z.name, {}) | {"name": z.name, "polygon": [list(p) for p in z.polygon],
                                          "labels": z.labels} for z in geometry.zones]
    lines = [old_lines.get(ln.name, {}) | {"name": ln.name, "a": list(ln.a), "b": list(ln.b),
                                           "positive": ln.positive, "negative": ln.negative,
                                           "labels": ln.labels} for ln in geometry.lines]
    data: dict[str, Any] = camera.model_dump() | {"zones": zones, "lines": lines}
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RemoteConfigRefused(f"{where}: {first['msg']}") from None


class CameraView:
    """Attached to a running Agent: answers remote configs and (if enabled) sends previews."""

    def __init__(self, agent: Agent):
        self.agent = agent
        self.applied_id: str | None = None
        self.state: ConfigStatePayload | None = None
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- remote config
    def on_config(self, _topic: str, raw: bytes) -> None:
        if not raw:
            return  # the retained config was cleared: keep what runs
        try:
            config = decode(RemoteConfig, raw)
        except PayloadError as exc:
            self._answer("unknown", ConfigStateName.REFUSED, f"not a remote config: {exc.reason}")
            return
        with self._lock:
            if config.config_id == self.applied_id:
                return  # the retained copy again after a reconnect
            self.apply(config)

    def apply(self, config: RemoteConfig) -> ConfigStatePayload:
        pipelines = {cam.name: cam.pipeline for cam in self.agent.cameras}
        try:
            unknown = sorted(set(config.cameras) - set(pipelines))
            if unknown:
                raise RemoteConfigRefused(
                    f"unknown camera {unknown[0]!r} (this agent runs: {', '.join(sorted(pipelines))})")
            new = {}
            for name, geometry in config.cameras.items():
                try:
                    new[name] = merged_camera(pipelines[name].camera, geometry)
                except RemoteConfigRefused as exc:
                    raise RemoteConfigRefused(f"camera {name!r}: {exc}") from None
        except RemoteConfigRefused as exc:
            log.warning("remote config %s refused: %s", config.config_id, exc)
            return self._answer(config.config_id, ConfigStateName.REFUSED, str(exc), new={})
        for name, camera in new.items():
            pipelines[name].set_geometry(camera)
        self.applied_id = config.config_id
        log.info("remote config %s applied to %s", config.config_id, ", ".join(sorted(new)) or "no camera")
        return self._answer(config.config_id, ConfigStateName.APPLIED, None, new=new)

    def _answer(self, config_id: str, state: ConfigStateName, reason: str | None,
                new: dict[str, CameraConfig] | None = None) -> ConfigStatePayload:
        running = {cam.name: (new or {}).get(cam.name, cam.pipeline.camera) for cam in self.agent.cameras}
        payload = ConfigStatePayload(device_id=self.agent.device_id, ts=time.time(), config_id=config_id,
                                     state=state, reason=reason,
                                     cameras={n: geometry_of(c) for n, c in running.items()})
        self.state = payload
        self._publish_state()
        return payload

    def _publish_state(self, connecting: bool = False) -> None:
        link = self.agent.link
        if self.state is None or link is None or not (connecting or link.connected.is_set()):
            return  # sent on the next connect
        topic = self.agent.topics.config_state(self.agent.device_id)
        link.client.publish(topic, self.state.to_bytes(), qos=QOS_RELIABLE, retain=True)

    # ------------------------------------------------------------------------------------ preview
    def preview(self, pipeline: CameraPipeline, config: PreviewConfig) -> PreviewPayload | None:
        frame = pipeline.last_frame
        if frame is None:
            return None
        image = frame.image
        h, w = image.shape[:2]
        if w > config.max_width:
            image = cv2.resize(image, (config.max_width, max(1, round(h * config.max_width / w))),
                               interpolation=cv2.INTER_AREA)
        quality = config.quality
        while True:
            jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
            if len(jpeg) <= MAX_PREVIEW_JPEG_BYTES or quality <= 20:
                break
            quality -= 15
        if len(jpeg) > MAX_PREVIEW_JPEG_BYTES:
            return None
        boxes = [PreviewBox(label=label, score=min(1.0, max(0.0, score)), track_id=tid,
                            bbox=tuple(min(1.0, max(0.0, float(v))) for v in box))  # type: ignore[arg-type]
                 for label, score, box, tid in pipeline.last_boxes[:64]]
        geometry = geometry_of(pipeline.camera)
        return PreviewPayload(device_id=self.agent.device_id, ts=frame.ts, camera=pipeline.camera.name,
                              width=image.shape[1], height=image.shape[0],
                              jpeg_b64=base64.b64encode(jpeg).decode(), boxes=boxes,
                              zones=geometry.zones, lines=geometry.lines)

    def _preview_loop(self, config: PreviewConfig) -> None:
        sent: dict[str, float] = {}
        stop = self.agent.stop_event
        while not stop.wait(config.interval_s):
            link = self.agent.link
            if link is None:
                continue
            for cam in self.agent.cameras:
                frame = cam.pipeline.last_frame
                if frame is None or sent.get(cam.name) == frame.ts:
                    continue
                try:
                    payload = self.preview(cam.pipeline, config)
                except Exception:  # a preview must never stop the camera
                    log.exception("preview of %s failed", cam.name)
                    continue
                if payload is not None:
                    topic = self.agent.topics.preview(self.agent.device_id)
                    link.publish_telemetry(topic, payload.to_bytes())
                    sent[cam.name] = frame.ts

    def start(self) -> CameraView:
        link = self.agent.link
        assert link is not None
        link.extra_subscriptions.append((self.agent.topics.config(self.agent.device_id), self.on_config))
        link.connect_listeners.append(lambda: self._publish_state(connecting=True))
        if self.agent.config.preview.enabled:
            self.thread = threading.Thread(target=self._preview_loop, args=(self.agent.config.preview,),
                                           name="preview", daemon=True)
            self.thread.start()
        return self
