"""A simulated camera for fleet simulations and tests: the real ModelRuntime on real video frames.

It implements ModelSwitcher the way the agent does (load the new session first, swap the reference
between two frames) and feeds the updater's health window and shadow statistics, so a fleet of real
updaters can run many to a process. ``python -m benchmarks.fleet_sim`` runs one device standalone
(used to SIGKILL a device mid-download and start it again).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import RuntimeConfig
from edge_agent.updater.config import HealthConfig, UpdaterConfig
from edge_agent.updater.transport import PahoTransport
from edge_agent.updater.updater import Updater
from model_runtime import ModelRuntime
from shared.topics import Topics

log = logging.getLogger(__name__)


def read_frames(path: str | Path, limit: int = 50, step: int = 3) -> list[np.ndarray]:
    """Every ``step``-th frame of a video, at most ``limit`` of them (decoded once, shared by a fleet)."""
    capture = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    if not frames:
        raise RuntimeError(f"no frames could be read from {path}")
    return frames


def synthetic_frames(count: int = 40, seed: int = 11, step: int = 2) -> list[np.ndarray]:
    """Frames of the rendered street (the reference models' domain), decoded once for a whole fleet."""
    from synthetic_world import SyntheticVideo

    video = SyntheticVideo(seed=seed, width=320, height=192, fps=10.0, duration_s=count * step / 10.0 + 0.1)
    return [video.frame(i * step).image for i in range(count)]


def sane(detections: Sequence) -> bool:
    return all(
        math.isfinite(d.score) and 0.0 <= d.score <= 1.0 and all(map(math.isfinite, d.box))
        for d in detections
    )


class SimulatedCamera:
    def __init__(
        self,
        model_dir: Path,
        frames: Sequence[np.ndarray],
        fps: float = 5.0,
        runtime_config: RuntimeConfig | None = None,
    ):
        self.runtime_config = runtime_config or RuntimeConfig(warmup_runs=0)
        self.frames = frames
        self.period = 1.0 / fps
        self._lock = threading.Lock()
        self._runtime = ModelRuntime(model_dir, self.runtime_config)
        self._dir = Path(model_dir)
        self._shadow: ModelRuntime | None = None
        self._shadow_every = 0
        self.updater: Updater | None = None
        self.frames_processed = 0
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------- ModelSwitcher
    def current_model(self) -> Path | None:
        return self._dir

    def activate(self, model_dir: Path) -> None:
        runtime = ModelRuntime(model_dir, self.runtime_config)  # load outside the lock: no frame waits
        with self._lock:
            self._runtime, self._dir = runtime, Path(model_dir)
            self.swaps += 1

    def start_shadow(self, model_dir: Path, sample_rate: float) -> None:
        runtime = ModelRuntime(model_dir, self.runtime_config)
        with self._lock:
            self._shadow, self._shadow_every = runtime, max(1, round(1 / sample_rate))

    def stop_shadow(self) -> None:
        with self._lock:
            self._shadow = None

    @property
    def active_ref(self) -> str:
        return self._runtime.ref

    # ---------------------------------------------------------------------------- frame loop
    def start(self) -> SimulatedCamera:
        self._thread = threading.Thread(target=self._run, name="sim-camera", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(self.period):
            frame = self.frames[index % len(self.frames)]
            index += 1
            with self._lock:
                runtime, shadow, every = self._runtime, self._shadow, self._shadow_every
            started = time.perf_counter()
            try:
                found, ok = runtime.detect(frame), True
            except Exception:
                found, ok = [], False
            active_ms = (time.perf_counter() - started) * 1000.0
            self.frames_processed += 1
            updater = self.updater
            if updater is None:
                continue
            updater.record_inference(runtime.ref, active_ms, ok, ok and sane(found))
            if shadow is not None and index % every == 0:
                started = time.perf_counter()
                try:
                    candidate = shadow.detect(frame)
                except Exception:
                    candidate = None
                updater.record_shadow(found, candidate, active_ms, (time.perf_counter() - started) * 1000.0)


class SimulatedDevice:
    """One fleet member: its own MQTT client, model store, camera and the real Updater."""

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        store_dir: Path,
        public_key: Path,
        baseline: Path,
        frames: Sequence[np.ndarray],
        fps: float = 5.0,
        health: HealthConfig | None = None,
        window: int = 4,
        request_timeout_s: float = 5.0,
        topics: Topics | None = None,
    ):
        config = UpdaterConfig(
            store_dir=store_dir,
            hub_public_key=public_key,
            window=window,
            request_timeout_s=request_timeout_s,
            health=health or HealthConfig(),
        )
        self.device_id = device_id
        self.transport = PahoTransport.connect(host, port, client_id=device_id, username=device_id)
        store_active = Updater.committed_model(store_dir)
        self.camera = SimulatedCamera(store_active or baseline, frames, fps)
        self.updater = Updater(device_id, config, self.transport, self.camera, topics=topics)
        self.camera.updater = self.updater

    def start(self) -> SimulatedDevice:
        self.camera.start()
        self.updater.start()
        return self

    def stop(self) -> None:
        self.updater.stop()
        self.camera.stop()
        self.transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one simulated device (real updater, real model)")
    parser.add_argument("--device", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--public-key", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="factory model directory")
    parser.add_argument("--video", type=Path, default=None, help="default: rendered street frames")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--min-inferences", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    device = SimulatedDevice(
        args.device,
        args.host,
        args.port,
        args.store,
        args.public_key,
        args.baseline,
        read_frames(args.video) if args.video else synthetic_frames(),
        args.fps,
        HealthConfig(min_inferences=args.min_inferences),
        window=args.window,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    device.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
