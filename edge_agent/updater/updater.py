"""The device side of a rollout: offer → verify → download → install → self-test → swap → health → commit.

MQTT callbacks only enqueue; one worker thread does everything else in order, so a slow sha256 or
self-test never blocks the network loop and no two steps of one update ever race. Every step reports a
``ModelStatePayload`` (OFFERED, DOWNLOADING with progress, VERIFIED, INSTALLED, ACTIVE, SHADOW, FAILED
with the reason, ROLLED_BACK with the reason).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.config import RuntimeConfig
from edge_agent.updater.config import UpdaterConfig
from edge_agent.updater.download import ChunkError, PartialDownload, discard_others
from edge_agent.updater.health import HealthWindow, LatencyHistory
from edge_agent.updater.selftest import SelfTestError, self_test
from edge_agent.updater.shadow import HasBox, ShadowStats
from edge_agent.updater.store import ModelStore, StoreError
from edge_agent.updater.switcher import ModelSwitcher
from edge_agent.updater.transport import Transport
from edge_agent.updater.trust import OfferRejected, check_scope, check_version, verify_offer
from shared.manifest import ManifestError, ModelManifest, load_manifest
from shared.payloads import ChunkRequest, ModelOffer, ModelStateName, ModelStatePayload, PayloadError, decode
from shared.rollout import ChunkFrameError, decode_chunk
from shared.signing import load_public_key
from shared.topics import Topics

log = logging.getLogger(__name__)
TICK_S = 0.2
MAX_REMEMBERED_FAILURES = 50  # offers not to retry when their retained message comes again


def offer_key(offer: ModelOffer) -> str:
    return f"{offer.campaign_id}:{offer.sha256}:{'shadow' if offer.shadow else 'run'}"


@dataclass
class Job:
    offer: ModelOffer
    manifest: ModelManifest
    key: str
    download: PartialDownload | None = None
    inflight: dict[int, float] = field(default_factory=dict)
    last_chunk_at: float = 0.0
    reported_progress: float = -1.0
    model_dir: Path | None = None
    previous_dir: Path | None = None
    trial: HealthWindow | None = None
    shadow: ShadowStats | None = None
    shadow_reported: int = 0
    pending_offer: bytes | None = None


class Updater:
    def __init__(
        self,
        device_id: str,
        config: UpdaterConfig,
        transport: Transport,
        switcher: ModelSwitcher,
        topics: Topics | None = None,
        runtime_config: RuntimeConfig | None = None,
        public_key: Ed25519PublicKey | None = None,
    ):
        self.device_id = device_id
        self.config = config
        self.transport = transport
        self.switcher = switcher
        self.topics = topics or Topics()
        self.runtime_config = runtime_config or RuntimeConfig(warmup_runs=0)
        self.public_key = public_key or load_public_key(Path(config.hub_public_key))
        self.store = ModelStore(config.store_dir)
        self.latency = LatencyHistory()
        self.job: Job | None = None
        self.last_state: ModelStatePayload | None = None
        self._events: queue.Queue[tuple] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chunk_topic_prefix = self.topics.model_chunk(device_id, 0)[:-1]

    # ------------------------------------------------------------------------------- lifecycle
    def start(self) -> Updater:
        self._recover()
        self.transport.subscribe(self.topics.model_offer(self.device_id), self._on_offer)
        self.transport.subscribe(self._chunk_topic_prefix + "+", self._on_chunk)
        self.transport.add_connect_listener(lambda: self._events.put(("connected",)))
        self._thread = threading.Thread(target=self._run, name=f"updater-{self.device_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    @staticmethod
    def committed_model(store_dir: Path) -> Path | None:
        """The model the agent should start with: the last committed one (an open trial never counts)."""
        return ModelStore(store_dir).active_dir()

    def _recover(self) -> None:
        """A trial that was open when the process died is not trusted: the committed model runs."""
        state = self.store.state()
        trial = state.get("trial")
        if trial:
            reason = "agent restarted during the health window"
            failed = dict(state.get("failed") or {})
            failed[trial["key"]] = {"state": ModelStateName.ROLLED_BACK.value, "reason": reason}
            self.store.update_state(trial=None, failed=failed)
            log.warning("%s: %s; %s stays active", trial["ref"], reason, state.get("active"))

    # ------------------------------------------------------------------ what the agent calls
    def record_inference(self, ref: str, latency_ms: float, ok: bool = True, sane: bool = True) -> None:
        """Called for every inference of the active model (cheap: an append)."""
        self.latency.add(ref, latency_ms)
        job = self.job
        if job and job.trial and job.trial.ref == ref:
            job.trial.observe(latency_ms, ok, sane)

    def record_shadow(
        self,
        active: Sequence[HasBox],
        candidate: Sequence[HasBox] | None,
        active_ms: float,
        candidate_ms: float,
    ) -> None:
        job = self.job
        if job and job.shadow:
            job.shadow.observe(active, candidate, active_ms, candidate_ms)

    # -------------------------------------------------------------------- mqtt → worker queue
    def _on_offer(self, topic: str, payload: bytes) -> None:
        self._events.put(("offer", payload))

    def _on_chunk(self, topic: str, payload: bytes) -> None:
        arg = topic[len(self._chunk_topic_prefix) :]
        if arg.isdigit():  # our own chunks/req also matches chunks/+
            self._events.put(("chunk", int(arg), payload))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._events.get(timeout=TICK_S)
            except queue.Empty:
                event = ("tick",)
            try:
                self._dispatch(event)
            except Exception:  # never let one bad step kill the updater
                log.exception("updater step %s failed", event[0])

    def _dispatch(self, event: tuple) -> None:
        kind = event[0]
        if kind == "offer":
            self._handle_offer(event[1])
        elif kind == "chunk":
            self._handle_chunk(event[1], event[2])
        elif kind == "connected" and self.job and self.job.download:
            self.job.inflight.clear()
            self._fill_window()
        self._tick()

    # ----------------------------------------------------------------------------- reporting
    def _report(
        self,
        state: ModelStateName,
        offer: ModelOffer | None = None,
        *,
        progress: float | None = None,
        reason: str | None = None,
        shadow: dict[str, float] | None = None,
    ) -> None:
        payload = ModelStatePayload(
            device_id=self.device_id,
            ts=time.time(),
            campaign_id=offer.campaign_id if offer else None,
            name=offer.name if offer else "unknown",
            version=offer.version if offer else "0.0.0",
            state=state,
            progress=progress,
            reason=reason[:500] if reason else None,
            shadow=shadow,
        )
        self.last_state = payload
        log.info(
            "%s %s %s%s",
            self.device_id,
            payload.state.value,
            f"{payload.name}@{payload.version}",
            f": {reason}" if reason else "",
        )
        self.transport.publish(self.topics.model_state(self.device_id), payload.to_bytes(), qos=1)

    def _fail(self, job: Job, reason: str, state: ModelStateName = ModelStateName.FAILED) -> None:
        failed = dict(self.store.state().get("failed") or {})
        failed[job.key] = {"state": state.value, "reason": reason}
        self.store.update_state(failed=dict(list(failed.items())[-MAX_REMEMBERED_FAILURES:]))
        self._report(state, job.offer, reason=reason)
        if self.job is job:
            self.job = None

    # -------------------------------------------------------------------------------- offers
    def _running_manifest(self) -> ModelManifest | None:
        current = self.switcher.current_model()
        if current is None:
            return None
        try:
            return load_manifest(current, verify_file=False)[0]
        except ManifestError:
            return None

    def _handle_offer(self, payload: bytes) -> None:
        if not payload:  # retained offer cleared: stop whatever is not yet running
            if self.job and self.job.trial is None:
                self._cancel_job()
            return
        try:
            offer = decode(ModelOffer, payload)
        except PayloadError as exc:
            self._report(ModelStateName.FAILED, reason=f"offer: {exc.reason}")
            return
        try:
            manifest = verify_offer(offer, self.public_key)
        except OfferRejected as exc:  # nothing in this offer is believed, so nothing is remembered
            self._report(ModelStateName.FAILED, offer, reason=str(exc))
            return
        key = offer_key(offer)
        if self.job and self.job.key == key:
            return  # the retained offer again after a reconnect: the job goes on
        job = Job(offer, manifest, key)
        failed = (self.store.state().get("failed") or {}).get(key)
        if failed:
            self._report(ModelStateName(failed["state"]), offer, reason=failed["reason"])
            return
        try:
            check_scope(offer, self.device_id)
        except OfferRejected as exc:  # signed, so believed: remembered, the running model stays
            self._fail(job, str(exc))
            return
        if self.job and self.job.trial is not None:
            self.job.pending_offer = payload  # the running trial concludes first
            return
        running = self._running_manifest()
        try:
            check_version(offer, manifest, running)
        except OfferRejected as exc:
            self._fail(job, str(exc))
            return
        self._cancel_job()
        if (
            not offer.shadow
            and running is not None
            and running.ref == manifest.ref
            and running.sha256 == manifest.sha256
        ):
            self._report(ModelStateName.ACTIVE, offer, reason="already running")
            return
        self.job = job
        self._report(ModelStateName.OFFERED, offer)
        if self.store.has(offer.name, offer.version, offer.sha256):
            job.model_dir = self.store.version_dir(offer.name, offer.version)
            self._after_install(job)
            return
        discard_others(self.store.partial_dir, offer.sha256)
        job.download = PartialDownload(
            self.store.partial_dir, offer.sha256, offer.size_bytes, offer.chunk_size
        )
        job.last_chunk_at = time.monotonic()
        self._report_progress(job, force=True)
        if job.download.complete:
            self._finish_download(job)
        else:
            self._fill_window()

    def _cancel_job(self) -> None:
        job, self.job = self.job, None
        if job and job.shadow is not None:
            self.switcher.stop_shadow()

    # ------------------------------------------------------------------------------ download
    def _fill_window(self) -> None:
        job = self.job
        if not job or not job.download:
            return
        free = self.config.window - len(job.inflight)
        if free <= 0:
            return
        wanted = [i for i in job.download.missing() if i not in job.inflight][:free]
        now = time.monotonic()
        runs: list[list[int]] = []
        for index in wanted:
            if runs and runs[-1][-1] + 1 == index:
                runs[-1].append(index)
            else:
                runs.append([index])
        for run in runs:
            request = ChunkRequest(
                campaign_id=job.offer.campaign_id, sha256=job.offer.sha256, first=run[0], count=len(run)
            )
            self.transport.publish(self.topics.model_chunk_request(self.device_id), request.to_bytes(), qos=1)
            for index in run:
                job.inflight[index] = now

    def _handle_chunk(self, index: int, frame: bytes) -> None:
        job = self.job
        if not job or not job.download:
            return
        try:
            prefix, frame_index, data = decode_chunk(frame)
        except ChunkFrameError as exc:
            log.warning("%s: dropped chunk %d: %s", self.device_id, index, exc)
            return
        if prefix != bytes.fromhex(job.offer.sha256)[:8] or frame_index != index:
            return  # a late chunk of another offer
        try:
            job.download.write(index, data)
        except ChunkError as exc:
            log.warning("%s: dropped chunk: %s", self.device_id, exc)
            return
        job.inflight.pop(index, None)
        job.last_chunk_at = time.monotonic()
        self._report_progress(job)
        if job.download.complete:
            self._finish_download(job)
        else:
            self._fill_window()

    def _report_progress(self, job: Job, force: bool = False) -> None:
        progress = job.download.progress if job.download else 0.0
        if force or progress - job.reported_progress >= self.config.progress_every:
            job.reported_progress = progress
            self._report(ModelStateName.DOWNLOADING, job.offer, progress=round(progress, 3))

    def _finish_download(self, job: Job) -> None:
        download = job.download
        assert download is not None
        actual = download.digest()
        if actual != job.offer.sha256:
            download.discard()
            self._fail(job, f"sha256 mismatch: downloaded {actual[:16]}…, offer {job.offer.sha256[:16]}…")
            return
        self._report(ModelStateName.VERIFIED, job.offer)
        try:
            job.model_dir = self.store.install(download.data_path, job.offer.manifest, job.offer.sha256)
        except StoreError as exc:
            download.discard()
            self._fail(job, f"install: {exc}")
            return
        download.discard()
        job.download = None
        job.inflight.clear()
        self._report(ModelStateName.INSTALLED, job.offer)
        self._after_install(job)

    # ---------------------------------------------------------------- self-test, swap, trial
    def _after_install(self, job: Job) -> None:
        assert job.model_dir is not None
        try:
            self_test(job.model_dir, self.runtime_config)
        except SelfTestError as exc:
            self.store.remove(job.offer.name, job.offer.version)
            self._fail(job, str(exc))
            return
        if job.offer.shadow:
            try:
                self.switcher.start_shadow(job.model_dir, self.config.shadow.sample_rate)
            except Exception as exc:
                self._fail(job, f"shadow: cannot load the candidate: {exc}")
                return
            job.shadow = ShadowStats(self.config.shadow.match_iou)
            self._report(ModelStateName.SHADOW, job.offer, shadow=job.shadow.summary())
            return
        previous = self.switcher.current_model()
        previous_ref = self._ref_of(previous)
        baseline = self.latency.p50(previous_ref) if previous_ref else None
        self.store.update_state(
            trial={
                "key": job.key,
                "ref": job.manifest.ref,
                "dir": str(job.model_dir),
                "previous": str(previous) if previous else None,
            }
        )
        try:
            self.switcher.activate(job.model_dir)
        except Exception as exc:  # the switcher keeps the old model when loading the new one fails
            self.store.update_state(trial=None)
            self._fail(job, f"activate: {exc}")
            return
        job.previous_dir = previous
        job.trial = HealthWindow(job.manifest.ref, self.config.health, baseline)

    @staticmethod
    def _ref_of(model_dir: Path | None) -> str | None:
        if model_dir is None:
            return None
        try:
            return load_manifest(model_dir, verify_file=False)[0].ref
        except ManifestError:
            return None

    def _tick(self) -> None:
        job = self.job
        if job is None:
            return
        if (
            job.download
            and job.inflight
            and time.monotonic() - job.last_chunk_at > self.config.request_timeout_s
        ):
            log.info("%s: no chunk for %.1fs, asking again", self.device_id, self.config.request_timeout_s)
            job.inflight.clear()
            job.last_chunk_at = time.monotonic()
            self._fill_window()
        if job.trial and job.trial.done():
            self._conclude_trial(job)
        if job.shadow and job.shadow.frames - job.shadow_reported >= self.config.shadow.report_every:
            job.shadow_reported = job.shadow.frames
            self._report(ModelStateName.SHADOW, job.offer, shadow=job.shadow.summary())

    def _conclude_trial(self, job: Job) -> None:
        assert job.trial is not None and job.model_dir is not None
        verdict = job.trial.verdict()
        if verdict.healthy:
            self.store.update_state(
                active=str(job.model_dir),
                previous=str(job.previous_dir) if job.previous_dir else None,
                trial=None,
            )
            self.store.prune({job.model_dir, *([job.previous_dir] if job.previous_dir else [])})
            self.job = None
            self._report(ModelStateName.ACTIVE, job.offer, reason=verdict.reason)
        else:
            reason = verdict.reason
            if job.previous_dir is not None:
                try:
                    self.switcher.activate(job.previous_dir)
                except Exception as exc:  # the store still has it; the next start runs the committed one
                    reason += f"; revert failed: {exc}"
            self.store.update_state(trial=None)
            self.store.remove(job.offer.name, job.offer.version)
            self._fail(job, reason, ModelStateName.ROLLED_BACK)
        self.job = None
        if job.pending_offer is not None:
            self._handle_offer(job.pending_offer)
