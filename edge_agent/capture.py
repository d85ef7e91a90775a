"""Capture thread + latest-frame buffer: capture never waits on inference.

The buffer holds one frame. A newer frame replaces an unread one (counted as dropped), so a slow
detector sees fresh frames instead of a growing backlog. Lost sources are reopened with exponential
backoff; the pipeline keeps running meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time

from edge_agent.sources import Frame, Source, SourceEnded, SourceError, SourceLost
from edge_agent.supervisor import Restarts, supervise

log = logging.getLogger(__name__)


class LatestFrame:
    """A one-slot mailbox. ``put`` never blocks; ``get`` waits for a frame newer than the last one read.

    ``due`` (monotonic seconds) is when the consumer next wants a frame: the capture thread only grabs
    frames before that (cheap) and materialises the first one after it. ``grabbed`` counts every camera
    frame, ``frames_in`` the materialised ones, ``dropped`` those replaced before anyone read them.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._fresh = False
        self.ended = False
        self.due = 0.0
        self.grabbed = 0
        self.frames_in = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._fresh:
                self.dropped += 1
            self._frame, self._fresh = frame, True
            self.frames_in += 1
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if not self._fresh and not self.ended:
                self._cond.wait(timeout)
            if not self._fresh:
                return None
            self._fresh = False
            return self._frame


class Backoff:
    def __init__(self, minimum: float, maximum: float):
        self.minimum, self.maximum = minimum, maximum
        self.delay = minimum

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.maximum, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = self.minimum


class CaptureThread(threading.Thread):
    def __init__(
        self,
        name: str,
        source: Source,
        buffer: LatestFrame,
        stop: threading.Event,
        backoff: Backoff | None = None,
        restarts: Restarts | None = None,
    ):
        super().__init__(name=f"capture-{name}", daemon=True)
        self.restarts = restarts
        self.source = source
        self.buffer = buffer
        self.stop_event = stop
        self.backoff = backoff or Backoff(1.0, 30.0)
        self.reconnects = 0
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            supervise(self.name, self._loop, self.stop_event, self.restarts)
        finally:
            self.source.close()
            self.buffer.end()

    def _loop(self) -> None:
        try:
            while not self.stop_event.is_set():
                if not self._open():
                    continue
                try:
                    self._pump()
                except SourceEnded:
                    log.info("%s ended", self.source.describe())
                    return
                except SourceLost as exc:
                    self.connected.clear()
                    self.reconnects += 1
                    log.warning("%s; reconnecting", exc)
                    self.stop_event.wait(self.backoff.next())
        except Exception:
            # An error nobody expected (a decoder bug): close, and let the supervisor reopen the source.
            self.connected.clear()
            self.source.close()
            raise

    def _open(self) -> bool:
        try:
            self.source.open()
        except SourceError as exc:
            delay = self.backoff.next()
            log.warning("%s; retrying in %.1fs", exc, delay)
            self.stop_event.wait(delay)
            return False
        log.info("opened %s (fps %s)", self.source.describe(), self.source.fps)
        self.connected.set()
        return True

    def _pump(self) -> None:
        interval = 1.0 / self.source.fps if self.source.realtime and self.source.fps else 0.0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self.source.grab()
            self.buffer.grabbed += 1
            self.backoff.reset()
            if time.monotonic() >= self.buffer.due:
                self.buffer.put(self.source.retrieve())
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
                else:
                    next_at = time.monotonic()
