"""How the running agent hosts the updater: its MQTT link as transport, its cameras as ModelSwitcher.

Every camera's model is wrapped in ``ObservedModel``: each inference is timed and reported to the
updater (health window), and while a shadow candidate is loaded a sample of frames also goes through
it (shadow agreement). A swap replaces the pipeline's model reference between two frames, so no
frame is dropped; the new session is fully loaded before the swap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.updater.store import ModelStore
from edge_agent.updater.updater import Updater
from model_runtime import ModelRuntime
from shared.manifest import load_manifest
from shared.payloads import DeviceState
from shared.topics import QOS_RELIABLE

if TYPE_CHECKING:
    from edge_agent.agent import Agent
    from edge_agent.mqtt_link import MqttLink

log = logging.getLogger(__name__)


class LinkTransport:
    """Transport over the agent's MqttLink (one connection per device: client id = device id)."""

    def __init__(self, link: MqttLink):
        self.link = link

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None:
        self.link.extra_subscriptions.append((topic_filter, handler))
        if self.link.connected.is_set():
            self.link.client.subscribe(topic_filter, qos=qos)

    def publish(self, topic: str, payload: bytes, qos: int = QOS_RELIABLE, retain: bool = False) -> None:
        self.link.client.publish(topic, payload, qos=qos, retain=retain)

    def add_connect_listener(self, callback: Callable[[], None]) -> None:
        self.link.connect_listeners.append(callback)


def _sane(found: list) -> bool:
    return all(
        math.isfinite(d.score) and 0.0 <= d.score <= 1.0 and all(map(math.isfinite, d.box)) for d in found
    )


class ObservedModel:
    """The camera's ModelRuntime, with each inference reported to the updater."""

    def __init__(self, runtime: ModelRuntime, switcher: AgentSwitcher):
        self.runtime = runtime
        self.switcher = switcher
        self.frames = 0

    def __getattr__(self, name: str) -> Any:  # manifest, ref, model_path, infer, dry_run …
        return getattr(self.runtime, name)

    def detect(self, image, region=None):
        updater = self.switcher.updater
        if updater is None:
            return self.runtime.detect(image, region)
        shadow, every = self.switcher.shadow_model()
        sample = (self.frames + 1) // every if shadow is not None and (self.frames + 1) % every == 0 else None
        # The two models take turns going first on the sampled frames: of two inferences run back to back
        # the second is preempted more often on a busy CPU (a freshly woken thread is favoured), which
        # alone made a candidate look 2-5x slower than the active model and failed the latency gate.
        candidate_first = sample is not None and sample % 2 == 1
        if candidate_first:
            candidate, candidate_ms = self._shadow_detect(shadow, image, region)
        started = time.perf_counter()
        try:
            found = self.runtime.detect(image, region)
        except Exception:
            updater.record_inference(self.runtime.ref, (time.perf_counter() - started) * 1000.0, ok=False)
            raise
        active_ms = (time.perf_counter() - started) * 1000.0
        updater.record_inference(self.runtime.ref, active_ms, ok=True, sane=_sane(found))
        self.frames += 1
        if sample is not None:
            if not candidate_first:
                candidate, candidate_ms = self._shadow_detect(shadow, image, region)
            updater.record_shadow(found, candidate, active_ms, candidate_ms)
        return found

    @staticmethod
    def _shadow_detect(shadow: ModelRuntime, image, region) -> tuple[list | None, float]:
        """The candidate's detections (None when it fails: the shadow gate counts it) and its time."""
        started = time.perf_counter()
        try:
            candidate = shadow.detect(image, region)
        except Exception:
            candidate = None
        return candidate, (time.perf_counter() - started) * 1000.0


class AgentSwitcher:
    """ModelSwitcher for the agent: swaps the model of every camera that runs a model of that name."""

    def __init__(self, agent: Agent):
        self.agent = agent
        self.updater: Updater | None = None
        self._shadow: ModelRuntime | None = None
        self._every = 5
        self._lock = threading.Lock()
        for cam in agent.cameras:
            cam.pipeline.swap_model(ObservedModel(cam.pipeline.model, self))

    def _runtime_of(self, cam) -> ModelRuntime:
        model = cam.pipeline.model
        return model.runtime if isinstance(model, ObservedModel) else model

    def current_model(self) -> Path | None:
        return Path(self._runtime_of(self.agent.cameras[0]).model_path).parent if self.agent.cameras else None

    def _targets(self, name: str) -> list:
        same = [cam for cam in self.agent.cameras if self._runtime_of(cam).manifest.name == name]
        return same or list(self.agent.cameras)

    def activate(self, model_dir: Path) -> None:
        manifest, _ = load_manifest(model_dir)
        targets = self._targets(manifest.name)
        runtimes = [ModelRuntime(model_dir, self.agent.config.runtime) for _ in targets]  # load, then swap
        for cam, runtime in zip(targets, runtimes, strict=True):
            cam.pipeline.swap_model(ObservedModel(runtime, self))
        log.info("model %s active on %s", manifest.ref, [cam.name for cam in targets])
        self._publish_status()

    def _publish_status(self) -> None:
        """The retained status names the running model: the fleet page shows the swap at once."""
        link = self.agent.link
        if link is not None and link.connected.is_set():
            status = self.agent.status(DeviceState.ONLINE).to_bytes()
            link.client.publish(
                self.agent.topics.status(self.agent.device_id), status, qos=QOS_RELIABLE, retain=True
            )

    def start_shadow(self, model_dir: Path, sample_rate: float) -> None:
        runtime = ModelRuntime(model_dir, self.agent.config.runtime)
        with self._lock:
            self._shadow, self._every = runtime, max(1, round(1 / sample_rate))

    def stop_shadow(self) -> None:
        with self._lock:
            self._shadow = None

    def shadow_model(self) -> tuple[ModelRuntime | None, int]:
        with self._lock:
            return self._shadow, self._every


def attach_updater(agent: Agent) -> Updater:
    """Wire an updater into an agent whose cameras and link exist but have not started yet."""
    config = agent.config.updater
    assert config is not None and agent.link is not None
    switcher = AgentSwitcher(agent)
    committed = ModelStore(config.store_dir).active_dir()
    if committed is not None and committed != switcher.current_model():
        log.info("starting with the last committed model %s", committed)
        switcher.activate(committed)
    updater = Updater(
        agent.device_id,
        config,
        LinkTransport(agent.link),
        switcher,
        topics=agent.topics,
        runtime_config=agent.config.runtime,
    )
    switcher.updater = updater
    return updater.start()
