"""Telemetry: one TelemetryPayload per camera every ``telemetry.interval_s`` (QoS 0, best effort)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.capture import LatestFrame
from edge_agent.outbox import Outbox
from edge_agent.pipeline import CameraPipeline
from edge_agent.supervisor import Restarts, supervise
from shared.payloads import TelemetryPayload

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature(path: Path = THERMAL_ZONE) -> float | None:
    """CPU temperature in °C where the kernel exposes it (Raspberry Pi and most SBCs), else None."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


class CameraMeter:
    """Turns a camera's running counters into rates over the last interval."""

    def __init__(self, name: str, pipeline: CameraPipeline, buffer: LatestFrame):
        self.name, self.pipeline, self.buffer = name, pipeline, buffer
        self._t = time.monotonic()
        self._grabbed = buffer.grabbed
        self._processed = pipeline.stats.processed

    def sample(self, device_id: str, outbox: Outbox, thread_restarts: int = 0) -> TelemetryPayload:
        now = time.monotonic()
        span = max(now - self._t, 1e-6)
        stats = self.pipeline.stats
        fps_in = (self.buffer.grabbed - self._grabbed) / span
        fps_processed = (stats.processed - self._processed) / span
        self._t, self._grabbed, self._processed = now, self.buffer.grabbed, stats.processed
        flags = list(stats.cnn_flags)
        ratios = list(stats.motion_ratio)
        p50, p95 = stats.percentile(50), stats.percentile(95)
        return TelemetryPayload(
            device_id=device_id,
            ts=time.time(),
            camera=self.name,
            fps_in=round(fps_in, 2),
            fps_processed=round(fps_processed, 2),
            inference_ms_p50=round(p50, 3) if p50 is not None else None,
            inference_ms_p95=round(p95, 3) if p95 is not None else None,
            cnn_frame_share=round(sum(flags) / len(flags), 4) if flags else None,
            motion_ratio=round(min(1.0, sum(ratios) / len(ratios)), 4) if ratios else None,
            outbox_depth=outbox.depth(),
            frames_dropped=self.buffer.dropped,
            events_dropped=outbox.counter("events_dropped"),
            thread_restarts=thread_restarts,
            cpu_temp_c=cpu_temperature(),
        )


class TelemetryThread(threading.Thread):
    def __init__(
        self,
        interval_s: float,
        sample: Callable[[], None],
        stop: threading.Event,
        restarts: Restarts | None = None,
    ):
        super().__init__(name="telemetry", daemon=True)
        self.interval_s, self.sample, self.stop_event = interval_s, sample, stop
        self.restarts = restarts

    def run(self) -> None:
        supervise(self.name, self._loop, self.stop_event, self.restarts)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.sample()
