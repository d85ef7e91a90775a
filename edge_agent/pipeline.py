"""One camera's pipeline: frame → motion gate → CNN (when needed) → tracker → rules → events.

``CameraPipeline.process`` is synchronous and deterministic for a given frame sequence, so benchmarks and
tests can drive it frame by frame; ``PipelineThread`` runs it live on the latest-frame buffer at the
camera's detect fps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_agent import appearance
from edge_agent.capture import LatestFrame
from edge_agent.config import CameraConfig, RuntimeConfig
from edge_agent.motion import MotionDetector
from edge_agent.rules import RuleEngine, RuleEvent
from edge_agent.sources import Frame
from edge_agent.supervisor import Restarts, supervise
from edge_agent.tracker import Box, Tracker, TrackUpdate
from model_runtime import Detection, ModelRuntime

log = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    """Counters for telemetry; windows are short so numbers describe *now*, not the whole uptime."""

    processed: int = 0
    cnn_frames: int = 0
    events: int = 0
    inference_ms: deque = field(default_factory=lambda: deque(maxlen=200))
    motion_ratio: deque = field(default_factory=lambda: deque(maxlen=200))
    cnn_flags: deque = field(default_factory=lambda: deque(maxlen=200))

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(list(self.inference_ms), q)) if self.inference_ms else None


class CameraPipeline:
    def __init__(self, camera: CameraConfig, runtime: RuntimeConfig, model: ModelRuntime | None = None):
        self.camera = camera
        self.model = model or ModelRuntime(camera.model.path, runtime)
        self.motion = MotionDetector(camera.motion) if camera.motion.enabled else None
        self.tracker = Tracker(camera.tracker)
        self.rules = RuleEngine(camera)
        self.stats = PipelineStats()
        self._last_cnn_ts: float | None = None
        self._changed_since_cnn = True  # motion (or a background reset) since the CNN last looked
        self._last_motion_ts: float | None = None
        self._motion_boxes: list[Box] = []  # this frame's motion
        self._looked_empty: list[Box] = []  # motion boxes the CNN last looked at and found nothing in
        threshold = camera.model.score_threshold
        self._min_score = threshold if threshold is not None else 0.0
        self._labels = set(camera.model.labels) if camera.model.labels else None
        self.last_frame: Frame | None = None  # what the preview shows (edge_agent.camera_view)
        self.last_boxes: list[tuple[str, float, Box, int]] = []
        self._next_camera: CameraConfig | None = None

    def set_geometry(self, camera: CameraConfig) -> None:
        """Run ``camera``'s zones and lines from the next frame on (a remote config, no restart)."""
        self._next_camera = camera

    def swap_model(self, model: ModelRuntime) -> None:
        """Install a new model between two frames (the updater calls this after its self-test)."""
        self.model = model

    def _needs_cnn(self, frame: Frame) -> bool:
        if self.motion is None:
            return True
        result = self.motion.detect(frame.image)
        self.stats.motion_ratio.append(result.ratio)
        self._changed_since_cnn |= result.moving or result.calibrating
        since_cnn = float("inf") if self._last_cnn_ts is None else frame.ts - self._last_cnn_ts
        self._motion_boxes = result.boxes if result.moving else []
        if result.moving:
            self._last_motion_ts = frame.ts
            new = self._unexplained(result.boxes, frame.ts)
            if new and since_cnn < self.camera.motion.cnn_interval_s - 1e-6:
                # Motion where the CNN found nothing moments ago (a waving tree, an object the model does
                # not know) is not new either: it waits for cnn_interval_s like known objects do.
                new = self._unexplained(self._not_looked_at(result.boxes), frame.ts)
            if new:
                return True  # something new moves: look now
        recent = (
            self._last_motion_ts is not None and frame.ts - self._last_motion_ts <= self.camera.motion.hold_s
        )
        if recent:  # known objects moving, or motion just stopped: follow them at cnn_interval_s ...
            if since_cnn >= self.camera.motion.cnn_interval_s - 1e-6:
                return True
            return self._near_rule(frame.ts)  # ... unless one is about to cross a zone edge or a line
        if since_cnn < self.camera.motion.periodic_s:
            return False
        # The periodic look keeps stationary objects tracked. With no track and nothing moving (or the
        # background recalibrated) since the last look, there is nothing new to see: an arriving object
        # moves, and that wakes the CNN at once.
        return bool(self.tracker.tracks) or self._changed_since_cnn

    def _near_rule(self, ts: float) -> bool:
        """A confirmed track that is near a zone edge or line, or will reach one before the next inference."""
        motion = self.camera.motion
        for track in self.tracker.active():
            if self.rules.has_pending(track):
                return True  # a crossing or zone change waits for observations on its new side
            now = self._anchor(track.box_at(ts))
            then = self._anchor(track.box_at(ts + motion.cnn_interval_s))
            if self.rules.decision_near(now, then, motion.rule_radius):
                return True
        return False

    def _anchor(self, box: tuple[float, float, float, float]) -> tuple[float, float]:
        return (box[0] + box[2]) / 2, box[3] if self.rules.anchor == "bottom" else (box[1] + box[3]) / 2

    def _not_looked_at(self, boxes: list[Box]) -> list[Box]:
        """Motion boxes outside (``track_radius``) every box where the CNN last looked and found nothing."""
        r = self.camera.motion.track_radius
        grown = [(b[0] - r, b[1] - r, b[2] + r, b[3] + r) for b in self._looked_empty]
        return [b for b in boxes if not any(_inside(b, g) for g in grown)]

    def _unexplained(self, boxes: list[Box], ts: float) -> bool:
        """True when a motion box does not fit inside any known track's expected extent (now + trail)."""
        if self.camera.motion.cnn_interval_s <= 0:
            return True
        known = []
        r = self.camera.motion.track_radius
        for track in self.tracker.active():
            # Only a track seen often enough to know its velocity can explain motion: a young track's
            # prediction is too rough to find it again after a skipped inference (nor can a lost one).
            if track.hits >= self.camera.motion.known_hits:
                # Where it is now and the trail it leaves in the running average (about 2 s).
                now, before = track.box_at(ts, margin=r), track.box_at(max(track.first_ts, ts - 2.0), r)
                known.append(
                    (
                        min(now[0], before[0]),
                        min(now[1], before[1]),
                        max(now[2], before[2]),
                        max(now[3], before[3]),
                    )
                )
        # Motion reaching beyond every known object's expected extent is something new (or a known object
        # moving unlike its prediction): either way the CNN must look now.
        return any(not any(_inside(box, k) for k in known) for box in boxes)

    def detect(self, image: np.ndarray) -> list[Detection]:
        started = time.perf_counter()
        found = self.model.detect(image)
        self.stats.inference_ms.append((time.perf_counter() - started) * 1000.0)
        return [
            d
            for d in found
            if d.score >= self._min_score and (self._labels is None or d.label in self._labels)
        ]

    def process(self, frame: Frame) -> list[RuleEvent]:
        if self._next_camera is not None:
            self.camera, self._next_camera = self._next_camera, None
            self.rules = RuleEngine(self.camera)
        self.stats.processed += 1
        run_cnn = self._needs_cnn(frame)
        self.stats.cnn_flags.append(run_cnn)
        if run_cnn:
            self.stats.cnn_frames += 1
            self._last_cnn_ts = frame.ts
            self._changed_since_cnn = False
            found = self.detect(frame.image)
            self._looked_empty = [b for b in self._motion_boxes if not any(_overlap(b, d.box) for d in found)]
            features = None
            if self.camera.tracker.appearance_weight > 0:
                features = [appearance.describe(frame.image, d.box) for d in found]
            update = self.tracker.update(found, frame.ts, features)
        else:
            update = TrackUpdate(self.tracker.active(), [], [])
        events = self.rules.process(update, frame.ts, tracked=run_cnn)
        self.stats.events += len(events)
        self.last_frame = frame
        self.last_boxes = [(t.label, t.best_score, t.box, t.id) for t in update.active]
        return events

    def finish(self, ts: float) -> list[RuleEvent]:
        """End every open track (source ended or shutdown) so each start has its end."""
        ended = self.tracker.flush()
        events = self.rules.process(TrackUpdate([], [], ended), ts, tracked=False) + self.rules.flush()
        self.stats.events += len(events)
        return events


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a: Box, b: Box) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and a[2] <= b[2] and a[3] <= b[3]


EventSink = Callable[[CameraPipeline, Frame | None, list[RuleEvent]], None]


class PipelineThread(threading.Thread):
    """Takes the freshest frame at most ``detect_fps`` times a second; never queues frames."""

    def __init__(
        self,
        pipeline: CameraPipeline,
        buffer: LatestFrame,
        sink: EventSink,
        stop: threading.Event,
        restarts: Restarts | None = None,
    ):
        super().__init__(name=f"pipeline-{pipeline.camera.name}", daemon=True)
        self.restarts = restarts
        self._last_ts = time.time()
        self.pipeline = pipeline
        self.buffer = buffer
        self.sink = sink
        self.stop_event = stop
        self.finished = threading.Event()
        self.errors = 0

    def run(self) -> None:
        try:
            supervise(self.name, self._loop, self.stop_event, self.restarts)
        finally:
            events = self.pipeline.finish(max(self._last_ts, time.time()))
            if events:
                self.sink(self.pipeline, None, events)
            self.finished.set()

    def _loop(self) -> None:
        """Returns when stopped or the source ended; anything else raised is the supervisor's to restart
        (a sink that cannot write to the outbox, say): the camera goes on after a pause."""
        interval = 1.0 / self.pipeline.camera.detect_fps
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            next_at = max(next_at + interval, time.monotonic())
            self.buffer.due = next_at  # frames grabbed before then are not even decoded to BGR
            frame = self.buffer.get(timeout=0.5)
            if frame is None:
                if self.buffer.ended:
                    break
                continue
            self._last_ts = frame.ts
            try:
                events = self.pipeline.process(frame)
            except Exception:  # one bad frame must not stop the camera
                self.errors += 1
                log.exception("camera %s: frame %d failed", self.pipeline.camera.name, frame.index)
                continue
            if events:
                self.sink(self.pipeline, frame, events)
