"""The agent: wires outbox, MQTT link, cameras and telemetry, and starts/stops them in order.

Start order: outbox → models (a bad model fails here, before anything runs) → MQTT → cameras →
telemetry. Stop is the reverse, driven by one stop event: cameras finish their frame and end their
tracks, events reach the outbox, in-flight messages get their PUBACK, the offline status goes out,
the outbox closes. Usable in-process (``Agent(config).start()`` / ``.stop()``) and from the CLI.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent import __version__
from edge_agent.camera_view import CameraView
from edge_agent.capture import Backoff, CaptureThread, LatestFrame
from edge_agent.config import AgentConfig, StreamSource, UsbSource
from edge_agent.events import EventEmitter
from edge_agent.mqtt_link import MqttLink
from edge_agent.outbox import Outbox
from edge_agent.pipeline import CameraPipeline, PipelineThread
from edge_agent.rules import RuleEvent
from edge_agent.site_capture import SiteCapture
from edge_agent.sources import Frame, create_source
from edge_agent.supervisor import Restarts
from edge_agent.telemetry import CameraMeter, TelemetryThread
from shared import cpu_features
from shared.payloads import CpuInfo, DeviceState, EventPayload, StatusPayload
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class Camera:
    name: str
    pipeline: CameraPipeline
    buffer: LatestFrame
    capture: CaptureThread
    worker: PipelineThread
    meter: CameraMeter


class Agent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.device_id = config.device.id
        self.topics = Topics(config.mqtt.prefix)
        self.stop_event = threading.Event()
        self.started_at = time.time()
        self.outbox: Outbox | None = None
        self.link: MqttLink | None = None
        self.emitter: EventEmitter | None = None
        self.cameras: list[Camera] = []
        self.telemetry: TelemetryThread | None = None
        # Called with every event as it goes to the outbox (the dashboard's local view, tests).
        self.event_listeners: list[Callable[[EventPayload], None]] = []
        self.updater = None  # edge_agent.updater.Updater when config.updater is set
        self.restarts = Restarts()  # every supervised loop's restarts, reported in telemetry
        self.camera_view: CameraView | None = None
        self.site_capture: SiteCapture | None = None
        self._running = False

    # ------------------------------------------------------------------------------------- status
    def status(self, state: DeviceState) -> StatusPayload:
        models = sorted({c.pipeline.model.ref for c in self.cameras})
        cpu = cpu_features.current()
        return StatusPayload(
            device_id=self.device_id,
            state=state,
            ts=time.time(),
            agent_version=__version__,
            model=",".join(models) or None,
            uptime_s=round(time.time() - self.started_at, 1),
            cameras=[c.name for c in self.cameras],
            cpu=CpuInfo(arch=cpu.arch, int8=list(cpu.int8)),
        )

    # ------------------------------------------------------------------------------------- start
    def start(self) -> Agent:
        cfg = self.config
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
        pending = self.outbox.depth()
        if pending:
            log.info("outbox holds %d messages from before; they drain first", pending)
        try:
            pipelines = [CameraPipeline(camera, cfg.runtime) for camera in cfg.cameras]  # ModelLoadError
        except Exception:
            self.outbox.close()
            raise
        self.emitter = EventEmitter(self.device_id, self.topics, self.outbox, self._wake_link)
        for camera, pipeline in zip(cfg.cameras, pipelines, strict=True):
            buffer = LatestFrame()
            source = create_source(camera.source)
            backoff = (
                Backoff(camera.source.reconnect_min_s, camera.source.reconnect_max_s)
                if isinstance(camera.source, StreamSource | UsbSource)
                else Backoff(1.0, 30.0)
            )
            capture = CaptureThread(
                camera.name, source, buffer, self.stop_event, backoff, self.restarts
            )
            worker = PipelineThread(pipeline, buffer, self._sink, self.stop_event, self.restarts)
            self.cameras.append(
                Camera(
                    camera.name, pipeline, buffer, capture, worker, CameraMeter(camera.name, pipeline, buffer)
                )
            )
        # After the cameras: the will names them.
        self.link = MqttLink(cfg, self.outbox, self.status, self.restarts)
        for cam in self.cameras:
            self.link.signal_handlers.append(cam.pipeline.rules.set_signal)
        if cfg.updater is not None and cfg.updater.enabled:
            from edge_agent.updater.agent_hook import attach_updater

            self.updater = attach_updater(self)  # before the link starts: it subscribes on connect
        self.camera_view = CameraView(self).start()  # remote configs and previews
        # Site capture (issue 24): frames the hub asks for, kept beside the outbox until confirmed.
        self.site_capture = SiteCapture(self, Path(cfg.outbox.path).parent / "captures").start()
        self.link.start()
        for cam in self.cameras:
            cam.worker.start()
            cam.capture.start()
        self.telemetry = TelemetryThread(
            cfg.telemetry.interval_s, self.publish_telemetry, self.stop_event, self.restarts
        )
        self.telemetry.start()
        self._running = True
        log.info(
            "agent %s started: %d camera(s), device %s, broker %s",
            __version__,
            len(self.cameras),
            self.device_id,
            cfg.mqtt.url,
        )
        return self

    def _wake_link(self) -> None:
        if self.link is not None:
            self.link.wake()

    def _sink(self, pipeline: CameraPipeline, frame: Frame | None, events: list[RuleEvent]) -> None:
        assert self.emitter is not None
        camera = pipeline.camera
        for payload in self.emitter.emit(camera.name, pipeline.model.ref, camera.snapshots, frame, events):
            for listener in self.event_listeners:
                listener(payload)

    def publish_telemetry(self) -> None:
        if self.link is None or self.outbox is None:
            return
        topic = self.topics.telemetry(self.device_id)
        for cam in self.cameras:
            sample = cam.meter.sample(self.device_id, self.outbox, self.restarts.total)
            self.link.publish_telemetry(topic, sample.to_bytes())

    # -------------------------------------------------------------------------------------- stop
    def stop(self, timeout: float = 10.0) -> None:
        if not self._running:
            return
        self._running = False
        log.info("stopping agent")
        self.stop_event.set()
        for cam in self.cameras:
            cam.worker.join(timeout)
            cam.capture.join(timeout)
        if self.telemetry is not None:
            self.telemetry.join(timeout)
        if self.updater is not None:
            self.updater.stop()
        if self.link is not None:
            self.link.stop()
        if self.outbox is not None:
            self.outbox.close()
        log.info("agent stopped")

    # ---------------------------------------------------------------------------------- helpers
    def sources_finished(self) -> bool:
        return all(cam.worker.finished.is_set() for cam in self.cameras)

    def wait_sources_finished(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(cam.worker.finished.wait(max(0.0, deadline - time.monotonic())) for cam in self.cameras)

    def wait_drained(self, timeout: float) -> bool:
        return self.link is not None and self.link.wait_idle(timeout)

    def run_forever(self) -> int:
        """CLI mode: SIGTERM/SIGINT stop gracefully; finite sources end the run once the outbox drained."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        published_at: float | None = None
        try:
            while not self.stop_event.wait(0.5):
                if not (self.sources_finished() and self.link is not None and self.link.wait_idle(0)):
                    published_at = None
                    continue
                assert self.outbox is not None
                if not self.config.outbox.hub_ack or self.outbox.depth() == 0:
                    log.info("all sources ended and the outbox is empty")
                    break
                # Published, not yet confirmed: give the hub one ack timeout, then leave the rest on
                # disk — the next start publishes it again.
                published_at = published_at or time.monotonic()
                if time.monotonic() - published_at > self.config.outbox.ack_timeout_s:
                    log.warning("all sources ended; %d event(s) still wait for the hub's acknowledgement"
                                " and stay in the outbox", self.outbox.depth())
                    break
        finally:
            self.stop()
        return 0
