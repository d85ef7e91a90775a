"""Site capture on the device (issue 24, the contract in shared/capture.py): take the frames the hub
asked for, keep them on disk, send them in bounded chunks, re-send what the hub does not confirm.

Durability: the request (retained on the broker) and every frame taken go to ``<dir>/<capture_id>/``
before anything is sent, so an agent killed mid-capture resumes where it stopped (the retained request
arrives again on connect; the frames on disk count as taken). A frame is forgotten only when the hub's
``capture/ack`` says the capture is finished; until then every frame the acks do not list is published
again after a reconnect or when ``resend_after_s`` passes without the hub confirming it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge_agent.supervisor import supervise
from shared.capture import (
    CaptureAck,
    CaptureChunk,
    CaptureMode,
    CaptureRequest,
    CaptureStateName,
    CaptureStatePayload,
)
from shared.payloads import PayloadError, decode
from shared.topics import QOS_RELIABLE

if TYPE_CHECKING:
    from edge_agent.agent import Agent
    from edge_agent.pipeline import CameraPipeline

log = logging.getLogger(__name__)

DONE_MARKER = "done"
REQUEST_FILE = "request.json"
MIN_QUALITY = 30


class CaptureFailed(RuntimeError):
    """The capture cannot go on; the message is what the hub shows."""


def encode_within(image: np.ndarray, max_width: int, max_bytes: int) -> bytes:
    """A JPEG of at most ``max_bytes``: scaled to ``max_width``, then lower quality, then smaller."""
    h, w = image.shape[:2]
    if w > max_width:
        image = cv2.resize(image, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    while True:
        for quality in (90, 75, 60, 45, MIN_QUALITY):
            jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
            if len(jpeg) <= max_bytes:
                return jpeg
        h, w = image.shape[:2]
        if w <= 32 or h <= 32:
            raise CaptureFailed(f"a frame does not fit in {max_bytes} bytes even at {w}x{h}")
        image = cv2.resize(image, (max(1, w * 3 // 4), max(1, h * 3 // 4)), interpolation=cv2.INTER_AREA)


@dataclass
class Job:
    request: CaptureRequest
    folder: Path
    frames: dict[int, Path] = field(default_factory=dict)  # frame index -> JPEG on disk
    stored: set[int] = field(default_factory=set)  # the hub has these (acks)
    rejected: set[int] = field(default_factory=set)  # the hub refused these for good
    sent_at: dict[int, float] = field(default_factory=dict)
    next_due: float = 0.0
    last_key: tuple[int, float] | None = None  # (frame index, ts) of the last frame taken
    last_gray: np.ndarray | None = None
    best: tuple[float, np.ndarray, tuple[int, float]] | None = None  # motion mode: the window's best
    waiting_since: float | None = None
    failed: str | None = None
    announced: CaptureStateName | None = None

    @property
    def taken(self) -> int:
        return len(self.frames)


class SiteCapture:
    """Attached to a running Agent: answers ``capture/req`` and ``capture/ack`` on the agent's link."""

    def __init__(self, agent: Agent, folder: Path, resend_after_s: float = 5.0,
                 no_frame_timeout_s: float = 30.0):
        self.agent = agent
        self.folder = folder
        self.resend_after_s = resend_after_s
        self.no_frame_timeout_s = no_frame_timeout_s
        self.job: Job | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._resend_all = False
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ mqtt handlers
    def on_request(self, _topic: str, raw: bytes) -> None:
        if not raw:
            with self._lock:  # withdrawn: stop and forget
                if self.job is not None:
                    self._finish(self.job, "withdrawn by the hub")
            return
        try:
            request = decode(CaptureRequest, raw)
        except PayloadError as exc:
            log.warning("capture request refused: %s", exc.reason)
            return
        with self._lock:
            if self.job is not None and self.job.request.capture_id == request.capture_id:
                return  # the retained copy again after a reconnect
            folder = self.folder / request.capture_id
            if (folder / DONE_MARKER).exists():
                return  # finished before: the hub has it (or gave up on it)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / REQUEST_FILE).write_bytes(raw)
            job = Job(request, folder)
            for path in sorted(folder.glob("*.jpg")):  # frames taken before a restart
                job.frames[int(path.stem.split("-")[0])] = path
            if self.job is not None:
                log.info("capture %s replaced by %s", self.job.request.capture_id, request.capture_id)
            self.job = job
            log.info("capture %s: %d frames every %g s (%s), %d already on disk", request.capture_id,
                     request.count, request.interval_s, request.mode.value, job.taken)
        self._wake.set()

    def on_ack(self, _topic: str, raw: bytes) -> None:
        try:
            ack = decode(CaptureAck, raw, topic_device_id=self.agent.device_id)
        except PayloadError as exc:
            log.warning("capture ack refused: %s", exc.reason)
            return
        with self._lock:
            job = self.job
            if job is None or job.request.capture_id != ack.capture_id:
                return
            job.stored |= {i for lo, hi in ack.stored for i in range(lo, hi + 1)}
            job.rejected |= {i for lo, hi in ack.rejected for i in range(lo, hi + 1)}
            if ack.finished:
                self._finish(job, f"the hub says {ack.state or 'finished'}")
        self._wake.set()

    def _on_connect(self) -> None:
        self._resend_all = True
        self._wake.set()

    def _finish(self, job: Job, why: str) -> None:
        """Under the lock: forget the frames, keep a marker so the retained request is not run again."""
        log.info("capture %s over (%s): %d/%d frames confirmed", job.request.capture_id, why,
                 len(job.stored), job.request.count)
        for path in job.folder.glob("*.jpg"):
            path.unlink(missing_ok=True)
        (job.folder / DONE_MARKER).write_text(why)
        self.job = None

    # ---------------------------------------------------------------------------------- the loop
    def _loop(self) -> None:
        stop = self.agent.stop_event
        while not stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            with self._lock:
                job = self.job
            if job is None:
                continue
            try:
                if job.failed is None and job.taken < job.request.count:
                    self._take(job)
            except CaptureFailed as exc:
                job.failed = str(exc)
                log.warning("capture %s failed: %s", job.request.capture_id, exc)
            self._announce(job)
            self._send_missing(job)

    def _pipeline(self, job: Job) -> CameraPipeline:
        cameras = {cam.name: cam.pipeline for cam in self.agent.cameras}
        name = job.request.camera or next(iter(cameras), None)
        if name not in cameras:
            raise CaptureFailed(f"unknown camera {name!r} (this agent runs: {', '.join(sorted(cameras))})")
        return cameras[name]

    def _take(self, job: Job) -> None:
        now = time.time()
        frame = self._pipeline(job).last_frame
        key = (frame.index, frame.ts) if frame is not None else None
        if frame is None or key == job.last_key or (job.best is not None and job.best[2] == key):
            job.waiting_since = job.waiting_since or now
            if now - job.waiting_since > max(self.no_frame_timeout_s, 3 * job.request.interval_s):
                raise CaptureFailed(f"no new frame from the camera for {now - job.waiting_since:.0f} s")
            return
        job.waiting_since = None
        if job.request.mode is CaptureMode.MOTION:
            gray = cv2.resize(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), (64, 48),
                              interpolation=cv2.INTER_AREA).astype(np.float32)
            change = math.inf if job.last_gray is None else float(np.mean(np.abs(gray - job.last_gray)))
            if job.best is None or change > job.best[0]:
                job.best = (change, frame.image, key)
            if now < job.next_due:
                return
            _change, image, key = job.best
            job.last_gray = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (64, 48),
                                       interpolation=cv2.INTER_AREA).astype(np.float32)
            job.best = None
        else:
            if now < job.next_due:
                return
            image = frame.image
        jpeg = encode_within(image, job.request.max_width, job.request.max_bytes)
        index = job.taken
        path = job.folder / f"{index:05d}-{int(now * 1000)}.jpg"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(jpeg)
        tmp.replace(path)  # on disk before it is sent: a restart resumes from here
        job.frames[index] = path
        job.last_key = key
        job.next_due = now + job.request.interval_s
        self._publish_frame(job, index)

    def _announce(self, job: Job) -> None:
        if job.failed is not None:
            state = CaptureStateName.FAILED
        elif job.taken >= job.request.count:
            state = CaptureStateName.SENT
        else:
            state = CaptureStateName.CAPTURING
        if state == job.announced and not (state is CaptureStateName.CAPTURING and job.taken % 10 == 0):
            return
        link = self.agent.link
        if link is None or not link.connected.is_set():
            return
        payload = CaptureStatePayload(device_id=self.agent.device_id, capture_id=job.request.capture_id,
                                      ts=time.time(), state=state, captured=job.taken,
                                      count=job.request.count,
                                      reason=job.failed[:500] if job.failed else None)
        link.client.publish(self.agent.topics.capture_state(self.agent.device_id), payload.to_bytes(),
                            qos=QOS_RELIABLE)
        job.announced = state

    def _send_missing(self, job: Job) -> None:
        link = self.agent.link
        if link is None or not link.connected.is_set():
            return
        now = time.time()
        resend_all, self._resend_all = self._resend_all, False
        if resend_all:
            job.announced = None  # tell the hub where we are again, too
        for index in sorted(job.frames):
            if index in job.stored or index in job.rejected:
                continue
            if resend_all or now - job.sent_at.get(index, -math.inf) > self.resend_after_s:
                self._publish_frame(job, index)

    def _publish_frame(self, job: Job, index: int) -> None:
        link = self.agent.link
        job.sent_at[index] = time.time()
        if link is None or not link.connected.is_set():
            return  # sent after the reconnect
        path = job.frames[index]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CaptureFailed(f"frame {index} lost on disk: {exc}") from None
        ts = int(path.stem.split("-")[1]) / 1000.0
        size, sha = len(data), hashlib.sha256(data).hexdigest()
        step = job.request.chunk_bytes
        chunks = max(1, math.ceil(size / step))
        topic = self.agent.topics.capture_chunk(self.agent.device_id, job.request.capture_id)
        for n in range(chunks):
            piece = base64.b64encode(data[n * step:(n + 1) * step]).decode()
            chunk = CaptureChunk(device_id=self.agent.device_id, capture_id=job.request.capture_id,
                                 frame=index, frames=job.request.count, chunk=n, chunks=chunks, ts=ts,
                                 size=size, sha256=sha, data_b64=piece)
            link.client.publish(topic, chunk.to_bytes(), qos=QOS_RELIABLE)

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> SiteCapture:
        link = self.agent.link
        assert link is not None
        topics, device = self.agent.topics, self.agent.device_id
        link.extra_subscriptions.append((topics.capture_request(device), self.on_request))
        link.extra_subscriptions.append((topics.capture_ack(device), self.on_ack))
        link.connect_listeners.append(self._on_connect)
        self.thread = threading.Thread(
            target=lambda: supervise("site-capture", self._loop, self.agent.stop_event, self.agent.restarts),
            name="site-capture", daemon=True)
        self.thread.start()
        return self


def forget_finished(folder: Path, keep_s: float = 7 * 86400) -> None:
    """Markers of finished captures older than ``keep_s`` (the retained request is long replaced)."""
    for marker in folder.glob(f"*/{DONE_MARKER}"):
        if marker.stat().st_mtime < time.time() - keep_s:
            shutil.rmtree(marker.parent, ignore_errors=True)

