"""Adaptation job tables: one row per job (what, who, where it got), and its bounded log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud_hub.models import Base, BigId

# The state machine (docs/hub/README.md#site-adaptation):
# queued -> capturing -> labelling -> training -> quantizing -> evaluating
#   -> rejected (not better: nothing registered) | registering -> shadow -> promoting -> done
# and from any non-final state: failed(reason) | cancelled.
QUEUED = "queued"
CAPTURING = "capturing"
LABELLING = "labelling"
TRAINING = "training"
QUANTIZING = "quantizing"
EVALUATING = "evaluating"
REJECTED = "rejected"
REGISTERING = "registering"
SHADOW = "shadow"
PROMOTING = "promoting"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL = (REJECTED, DONE, FAILED, CANCELLED)
RUNNING = (LABELLING, TRAINING, QUANTIZING, EVALUATING)
STATES = (QUEUED, CAPTURING, *RUNNING, REJECTED, REGISTERING, SHADOW, PROMOTING, DONE, FAILED, CANCELLED)
# adapt()'s progress stages -> job states ("card" is the last step of judging the result)
STAGE_STATES = {
    "label": LABELLING,
    "train": TRAINING,
    "quantize": QUANTIZING,
    "evaluate": EVALUATING,
    "card": EVALUATING,
}
LOG_LINES = 200  # per job; older lines are dropped


class AdaptJob(Base):
    """One adaptation of one device's current model to its own view."""

    __tablename__ = "adapt_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    capture_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("captures.id", ondelete="SET NULL"), doc="the frames (given or started)"
    )
    capture_started: Mapped[bool] = mapped_column(
        Boolean, default=False, doc="the job asked for this capture itself"
    )
    teacher_ref: Mapped[str] = mapped_column(String(160), doc="name@version of the teacher labelling frames")
    base_ref: Mapped[str] = mapped_column(String(160), doc="name@version the device ran when the job started")
    created_by: Mapped[str] = mapped_column(String(64), doc="user name, or cli:<os user>")
    created_at: Mapped[float] = mapped_column(Float, index=True)
    updated_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0, doc="0..1 within the current stage")
    message: Mapped[str | None] = mapped_column(Text, doc="what the job is doing or waiting for now")
    reason: Mapped[str | None] = mapped_column(Text, doc="why it ended (failed, rejected, cancelled)")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="the base model judged on later frames")
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="the adapted model, same frames")
    frames_train: Mapped[int | None] = mapped_column(Integer)
    frames_judge: Mapped[int | None] = mapped_column(Integer)
    result_ref: Mapped[str | None] = mapped_column(String(160), doc="the registered adapted model")
    campaign_id: Mapped[str | None] = mapped_column(String(32), doc="its shadow-then-promote campaign")
    worker: Mapped[str | None] = mapped_column(String(128), doc="the adapt-worker holding the lease")
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="claims so far (more than 1: resumed)")
    finished_at: Mapped[float | None] = mapped_column(Float)


class AdaptLogLine(Base):
    """One line of a job's log (bounded to LOG_LINES per job)."""

    __tablename__ = "adapt_log"
    __table_args__ = (Index("ix_adapt_log_job_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("adapt_jobs.id", ondelete="CASCADE"))
    at: Mapped[float] = mapped_column(Float)
    line: Mapped[str] = mapped_column(Text)
