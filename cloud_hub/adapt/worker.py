"""``cloud-hub adapt-worker``: takes adaptation jobs one at a time and carries each to a final state.

Claiming is one conditional UPDATE (the lease is free or expired), so two workers never run one job, on
SQLite or PostgreSQL. A heartbeat thread extends the lease while the job runs; a worker that is killed
stops extending it and the job is claimed again once the lease runs out (``attempts`` counts the claims).
Work already done is not redone: adapt()'s finished output (``report.json``) under
``<instance>/adapt/<job>/run`` is read back instead of training again, registering the same bytes again
is a no-op, and the job's campaign is found again by its target ``adapt:<job>``.

torch is imported here only, inside ``train`` (firmware_models.adapt, the ``train`` extra): the web app
and ingest never load it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cloud_hub.adapt import service
from cloud_hub.adapt.gate import ADAPT_GATE
from cloud_hub.adapt.inputs import InputError, capture_frames, materialize, split_by_time
from cloud_hub.adapt.models import (
    CAPTURING,
    DONE,
    EVALUATING,
    FAILED,
    FINAL,
    LABELLING,
    PROMOTING,
    QUEUED,
    REGISTERING,
    REJECTED,
    RUNNING,
    SHADOW,
    STAGE_STATES,
    AdaptJob,
)
from cloud_hub.capture.ingest import expire
from cloud_hub.capture.models import COMPLETE, Capture
from cloud_hub.capture.models import FINAL as CAPTURE_FINAL
from cloud_hub.models import Device
from cloud_hub.rollout import campaigns
from cloud_hub.rollout.keys import KeyError_, key_dir, load_signing_key
from cloud_hub.rollout.models import STUDENT, Campaign
from cloud_hub.rollout.registry import blob_dir, register_package
from cloud_hub.rollout.validate import ModelRejected
from cloud_hub.snapshots import SnapshotStore

log = logging.getLogger(__name__)


class JobStopped(Exception):
    """The job was cancelled, its lease was lost, or the worker is stopping: leave it where it is."""


class JobFailed(Exception):
    """The job ends ``failed`` with this reason."""


@dataclass(frozen=True)
class WorkerOptions:
    lease_s: float = 60.0
    poll_s: float = 2.0
    gate: dict[str, float] = field(default_factory=lambda: dict(ADAPT_GATE))
    shadow_timeout_s: float = 3600.0  # device offline (no report) this long during shadow/promotion: failed
    smoke: bool = False  # AdaptSettings.smoke(): a tiny training run (tests, a first look)
    steps: int | None = None  # training steps instead of the settings' own
    min_gain: float | None = None  # macro F1 the adapted model must gain over the base to count as better


class AdaptWorker:
    def __init__(
        self,
        engine: Engine,
        instance_path: str | Path,
        snapshot_dir: str,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
    ):
        self.engine = engine
        self.instance = Path(instance_path)
        self.snapshots = SnapshotStore(snapshot_dir)
        self.options = options or WorkerOptions()
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.stop_event = threading.Event()
        self._lost = threading.Event()

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Until ``stop_event``: claim a job, carry it as far as it goes, repeat."""
        while not self.stop_event.is_set():
            try:
                job_id = self.claim()
                if job_id is None:
                    self.stop_event.wait(self.options.poll_s)
                    continue
                self.process(job_id)
            except Exception:  # the guard: one bad job must not stop the worker
                log.exception("adapt-worker: a step failed")
                self.stop_event.wait(self.options.poll_s)

    def claimable(self, db: Session, now: float) -> list[str]:
        """Jobs not final whose lease is free, oldest first; a job still capturing only once its capture
        is over (captures progress without the worker: ingest stores the frames)."""
        expire(db.connection(), now)
        db.commit()
        rows = db.execute(
            select(AdaptJob.id, AdaptJob.state, Capture.state)
            .outerjoin(Capture, Capture.id == AdaptJob.capture_id)
            .where(
                AdaptJob.state.notin_(FINAL), or_(AdaptJob.lease_until.is_(None), AdaptJob.lease_until < now)
            )
            .order_by(AdaptJob.created_at)
        ).all()
        return [
            job_id
            for job_id, state, capture_state in rows
            if state not in (QUEUED, CAPTURING) or capture_state is None or capture_state in CAPTURE_FINAL
        ]

    def claim(self) -> str | None:
        now = time.time()
        with Session(self.engine) as db:
            candidates = self.claimable(db, now)
            for job_id in candidates:
                try:
                    done = db.execute(
                        update(AdaptJob)
                        .where(
                            AdaptJob.id == job_id,
                            AdaptJob.state.notin_(FINAL),
                            or_(AdaptJob.lease_until.is_(None), AdaptJob.lease_until < now),
                        )
                        .values(
                            worker=self.id,
                            lease_until=now + self.options.lease_s,
                            attempts=AdaptJob.attempts + 1,
                        )
                    )
                    db.commit()
                except OperationalError:  # SQLite: another writer got there first; try next poll
                    db.rollback()
                    return None
                if done.rowcount == 1:
                    return job_id
        return None

    def process(self, job_id: str) -> None:
        self._lost.clear()
        beat = threading.Thread(
            target=self._heartbeat, args=(job_id,), name=f"adapt-lease-{job_id}", daemon=True
        )
        done = threading.Event()
        self._beat_done = done
        beat.start()
        try:
            with Session(self.engine) as db:
                job = db.get(AdaptJob, job_id)
                assert job is not None
                attempts = job.attempts
            if attempts > 1:
                self._update(job_id, log=f"taken up again by {self.id} (attempt {attempts})")
            else:
                self._update(job_id, log=f"taken by {self.id}")
            self._advance(job_id)
        except JobStopped as exc:
            log.info("adapt job %s left as it is: %s", job_id, exc)
        except JobFailed as exc:
            self._finish(job_id, FAILED, str(exc))
        except Exception as exc:
            log.exception("adapt job %s failed", job_id)
            self._finish(job_id, FAILED, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            done.set()
            beat.join(5)
            self._release(job_id)

    def _heartbeat(self, job_id: str) -> None:
        while not self._beat_done.wait(self.options.lease_s / 3):
            try:
                with Session(self.engine) as db:
                    done = db.execute(
                        update(AdaptJob)
                        .where(AdaptJob.id == job_id, AdaptJob.worker == self.id)
                        .values(lease_until=time.time() + self.options.lease_s)
                    )
                    db.commit()
                if done.rowcount != 1:
                    self._lost.set()
            except Exception:
                log.exception("adapt-worker: lease heartbeat failed")

    def _release(self, job_id: str) -> None:
        with Session(self.engine) as db:
            db.execute(
                update(AdaptJob)
                .where(AdaptJob.id == job_id, AdaptJob.worker == self.id)
                .values(worker=None, lease_until=None)
            )
            db.commit()

    # ---------------------------------------------------------------------------- job writes
    def _update(self, job_id: str, log: str | None = None, **values: Any) -> None:
        """Change the job while it is ours and not final; anything else stops the work."""
        if self.stop_event.is_set():
            raise JobStopped("the worker is stopping")
        if self._lost.is_set():
            raise JobStopped("the lease was lost")
        now = time.time()
        with Session(self.engine) as db:
            done = db.execute(
                update(AdaptJob)
                .where(AdaptJob.id == job_id, AdaptJob.worker == self.id, AdaptJob.state.notin_(FINAL))
                .values(updated_at=now, **values)
            )
            if done.rowcount != 1:
                db.rollback()
                raise JobStopped("the job was cancelled or taken by another worker")
            if log:
                service.add_log(db, job_id, log, now)
            db.commit()

    def _finish(self, job_id: str, state: str, reason: str | None, **values: Any) -> None:
        now = time.time()
        with Session(self.engine) as db:
            done = db.execute(
                update(AdaptJob)
                .where(AdaptJob.id == job_id, AdaptJob.worker == self.id, AdaptJob.state.notin_(FINAL))
                .values(state=state, reason=reason, finished_at=now, updated_at=now, message=None, **values)
            )
            if done.rowcount == 1:
                service.add_log(db, job_id, f"{state}" + (f": {reason}" if reason else ""), now)
            db.commit()
        log.info("adapt job %s %s%s", job_id, state, f": {reason}" if reason else "")

    def _job(self, job_id: str) -> AdaptJob:
        with Session(self.engine, expire_on_commit=False) as db:
            job = db.get(AdaptJob, job_id)
            assert job is not None
            return job

    # ----------------------------------------------------------------------------- the stages
    def _advance(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.state in (QUEUED, CAPTURING, *RUNNING):
            if not self.train(job):
                return
            job = self._job(job_id)
        if job.state == REGISTERING:
            self.register(job)
            job = self._job(job_id)
        if job.state in (SHADOW, PROMOTING):
            self.watch(job)

    def workdir(self, job_id: str) -> Path:
        return self.instance / "adapt" / job_id

    def train(self, job: AdaptJob) -> bool:
        """Label, fine-tune, quantize, judge (adapt()); True when the job goes on to registering."""
        run = self.workdir(job.id) / "run"
        report_path = run / "report.json"
        if report_path.is_file():
            report = json.loads(report_path.read_text())
            self._update(job.id, log="training finished before a restart: its report is read back")
        else:
            report = self._run_adapt(job, run)
        values = {"before": report.get("before"), "after": report.get("after"), "progress": 1.0}
        if not report.get("improved"):
            self._finish(
                job.id,
                REJECTED,
                f"not better on the held-out frames, nothing registered: "
                f"{report.get('reason') or 'no reason given'}",
                **values,
            )
            return False
        self._update(
            job.id,
            log=f"better on the held-out frames: {report.get('reason') or ''}".strip(),
            state=REGISTERING,
            message="registering the adapted model",
            **values,
        )
        return True

    def _frames(self, job: AdaptJob) -> list:
        with Session(self.engine) as db:
            capture = db.get(Capture, job.capture_id) if job.capture_id else None
            if capture is None:
                raise JobFailed("its capture no longer exists")
            if capture.state != COMPLETE and (job.capture_started or capture.frames_received == 0):
                raise JobFailed(
                    f"capture {capture.id} {capture.state}"
                    + (f": {capture.reason}" if capture.reason else "")
                    + f" ({capture.frames_received}/{capture.count} frames)"
                )
            frames, missing = capture_frames(db, capture.id, self.snapshots)
        if missing:
            self._update(
                job.id, log=f"{missing} captured frames could not be read (retention, or not decodable)"
            )
        return frames

    def _run_adapt(self, job: AdaptJob, run: Path) -> dict:
        frames = self._frames(job)
        train, judge = split_by_time(frames)
        self._update(
            job.id,
            state=LABELLING,
            progress=0.0,
            frames_train=len(train),
            frames_judge=len(judge),
            message=f"{len(train)} earlier frames to train on, {len(judge)} later frames to judge on",
            log=f"{len(frames)} frames in time order: the first {len(train)} train, the last "
            f"{len(judge)} judge",
        )
        work = self.workdir(job.id)
        blobs = blob_dir(self.instance)
        with Session(self.engine) as db:
            try:
                teacher = materialize(db, job.teacher_ref, blobs, work / "teacher")
                base = materialize(db, job.base_ref, blobs, work / "base")
            except InputError as exc:
                raise JobFailed(str(exc)) from None
        from firmware_models.adapt import AdaptError, AdaptSettings, adapt  # torch: only in this process

        settings = AdaptSettings().smoke() if self.options.smoke else AdaptSettings()
        for name in ("steps", "min_gain"):
            if getattr(self.options, name) is not None:
                settings = dataclasses.replace(settings, **{name: getattr(self.options, name)})
        partial = work / "run.partial"
        if partial.exists():
            shutil.rmtree(partial)  # an attempt killed midway: its output is not trusted
        version = service.adapted_version(job.base_ref.partition("@")[2], job.id)
        try:
            report = adapt(
                teacher=teacher,
                base=base,
                train=train,
                judge=judge,
                out=partial,
                settings=settings,
                version=version,
                on_progress=self._progress(job.id),
            )
        except AdaptError as exc:
            raise JobFailed(str(exc)) from None
        if not (partial / "report.json").is_file():
            (partial / "report.json").write_text(json.dumps(report, indent=2, default=str))
        if run.exists():
            shutil.rmtree(run)
        os.replace(partial, run)
        return json.loads((run / "report.json").read_text())

    def _progress(self, job_id: str):
        """adapt()'s progress callback: the job's state and bar, a log line per stage; raising here (the
        job was cancelled, the worker stops) ends adapt() early."""
        last = {"state": None, "at": 0.0, "logged": 0.0}

        def report(progress) -> None:
            state = STAGE_STATES.get(progress.stage, EVALUATING)
            now = time.monotonic()
            changed = state != last["state"]
            if not changed and now - last["at"] < 1.0 and progress.done < progress.total:
                if self.stop_event.is_set() or self._lost.is_set():
                    raise JobStopped("the worker is stopping")
                return
            line = None
            if changed or now - last["logged"] >= 10.0:
                line = f"{progress.stage} {progress.done}/{progress.total}: {progress.message}"
                last["logged"] = now
            last["state"], last["at"] = state, now
            fraction = progress.done / progress.total if progress.total else 0.0
            self._update(
                job_id,
                log=line,
                state=state,
                progress=round(fraction, 4),
                message=f"{progress.stage}: {progress.message}"[:500],
            )

        return report

    def register(self, job: AdaptJob) -> None:
        """The adapted model into the registry (signed, scoped to this job's device: it was trained on
        that camera's view, so no campaign may offer it to another), then a shadow campaign there."""
        model_dir = self.workdir(job.id) / "run" / "model"
        try:
            key = load_signing_key(key_dir(self.instance))
        except KeyError_ as exc:
            raise JobFailed(f"cannot sign the adapted model: {exc}") from None
        with Session(self.engine, expire_on_commit=False) as db:
            try:
                row, created = register_package(db, model_dir, blob_dir(self.instance), key, STUDENT,
                                                device_scope=job.device_id)
            except ModelRejected as exc:
                raise JobFailed(f"the registry refused the adapted model: {exc}") from None
            self._update(
                job.id,
                result_ref=row.ref,
                log=f"registered {row.ref} (signed, scoped to {job.device_id})" if created
                else f"{row.ref} already registered",
            )
            target = f"adapt:{job.id}"
            campaign = db.scalar(select(Campaign).where(Campaign.target == target))
            if campaign is None:
                try:
                    campaign = campaigns.create(
                        db,
                        key,
                        row,
                        target,
                        canary=1,
                        waves=[1.0],
                        max_failure=0.0,
                        max_concurrent=1,
                        shadow=True,
                        shadow_thresholds=self.options.gate,
                        devices=[job.device_id],
                    )
                except campaigns.CampaignError as exc:
                    raise JobFailed(f"shadow campaign not started: {exc}") from None
            self._update(
                job.id,
                state=SHADOW,
                campaign_id=campaign.id,
                progress=0.0,
                message=f"shadow campaign {campaign.id} offered to {job.device_id}",
                log=f"shadow campaign {campaign.id}: {row.ref} beside {job.base_ref} on {job.device_id}",
            )

    def watch(self, job: AdaptJob) -> None:
        """Follow the campaign: shadow statistics, promotion, the device running the model — or the reason
        it stopped. Returns when the job is final."""
        gate = self.options.gate
        while True:
            with Session(self.engine) as db:
                campaign = db.get(Campaign, job.campaign_id) if job.campaign_id else None
                if campaign is None:
                    raise JobFailed(f"its campaign {job.campaign_id} no longer exists")
                rows = campaigns.devices_of(db, campaign.id)
                device = db.get(Device, job.device_id)
                online = device is not None and device.state == "online"
                row = rows[0] if rows else None
                if campaign.state in (campaigns.ABORTED, campaigns.ABORTING):
                    raise JobFailed(
                        f"campaign {campaign.id} was aborted: {campaign.reason or 'no reason given'}"
                    )
                if campaign.state == campaigns.PAUSED:
                    reason = campaign.reason or "paused"
                    self._abort(db, campaign.id, f"adaptation {job.id} stopped: {reason}")
                    raise JobFailed(f"not promoted, campaign {campaign.id} stopped: {reason}")
                waiting = ""
                if row is not None and not online:
                    silent = time.time() - row.updated_at
                    if silent > self.options.shadow_timeout_s:
                        self._abort(db, campaign.id, f"adaptation {job.id}: device offline")
                        raise JobFailed(
                            f"device {job.device_id} offline for more than "
                            f"{self.options.shadow_timeout_s:g} s during {campaign.phase}"
                        )
                    waiting = (
                        f"; waiting for device {job.device_id} (offline, {silent:.0f} s without a report, "
                        f"gives up after {self.options.shadow_timeout_s:g} s)"
                    )
                if campaign.phase == "shadow":
                    stats = (row.shadow if row else None) or {}
                    frames = stats.get("frames", 0.0)
                    ratio = (
                        stats.get("candidate_ms_p50", 0.0) / stats["active_ms_p50"]
                        if stats.get("active_ms_p50")
                        else 0.0
                    )
                    message = (
                        f"shadow on {job.device_id}: {row.state if row else '?'}, {frames:.0f}/"
                        f"{gate['min_frames']:.0f} frames, latency {ratio:.2f}x "
                        f"(gate {gate['max_latency_ratio']}x)"
                        f", errors {stats.get('candidate_errors', 0):.0f}, agreement with the old model "
                        f"{stats.get('agreement', 0):.2f} (reported, not gated){waiting}"
                    )
                    self._update(
                        job.id,
                        state=SHADOW,
                        progress=round(min(1.0, frames / gate["min_frames"]), 4),
                        message=message,
                    )
                elif campaign.state == campaigns.COMPLETED and row is not None and row.state == "ACTIVE":
                    self._finish(job.id, DONE, None, progress=1.0)
                    with Session(self.engine) as db2:
                        service.add_log(db2, job.id, f"{job.device_id} runs {job.result_ref}")
                        db2.commit()
                    return
                else:
                    state = row.state if row else "?"
                    if job.state != PROMOTING:
                        self._update(
                            job.id, state=PROMOTING, log=f"shadow gate passed: promoting on {job.device_id}"
                        )
                        job.state = PROMOTING
                    self._update(
                        job.id,
                        progress=round(row.progress or 0.0, 4) if row else 0.0,
                        message=f"promoting on {job.device_id}: {state}{waiting}",
                    )
            time.sleep(self.options.poll_s)
            if self.stop_event.is_set():
                raise JobStopped("the worker is stopping")

    @staticmethod
    def _abort(db: Session, campaign_id: str, reason: str) -> None:
        with contextlib.suppress(campaigns.CampaignError):
            campaigns.abort(db, campaign_id, reason)
