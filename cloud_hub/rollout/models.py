"""Rollout tables (on the hub's one declarative Base, so Alembic and the app see one schema)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud_hub.models import Base

STUDENT = "student"  # runs on devices: the only kind a campaign may offer
TEACHER = "teacher"  # a big model the hub labels frames with (issue 24); never offered to a device
MODEL_KINDS = (STUDENT, TEACHER)


class ModelVersion(Base):
    """A registered model: validated on the hub, its bundle stored under its sha256, signed."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True, doc="of the bundle devices download")
    size_bytes: Mapped[int] = mapped_column(Integer)
    model_sha256: Mapped[str] = mapped_column(String(64), doc="of the model file inside the bundle")
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(Text, doc="hub Ed25519 over the registry record")
    created_at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(
        String(16), default=STUDENT, server_default=STUDENT,
        doc="student (offered to devices) | teacher (hub-side labeller, never offered)")
    device_scope: Mapped[str | None] = mapped_column(
        String(64), default=None,
        doc="the one device this version may be offered to (adapted to its view); NULL: any device")

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def scope_refusal(self, device_id: str) -> str | None:
        """Why this version may not be offered to ``device_id`` (None: it may)."""
        if self.device_scope is None or self.device_scope == device_id:
            return None
        return (f"{self.ref} is scoped to {self.device_scope} (adapted to its view); it cannot be offered "
                f"to {device_id}")


class Campaign(Base):
    __tablename__ = "rollout_campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    target: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), index=True, doc="running|paused|completed|aborted")
    phase: Mapped[str] = mapped_column(String(16), doc="shadow (evaluating) | rollout")
    canary: Mapped[int] = mapped_column(Integer)
    waves: Mapped[list[float]] = mapped_column(JSON)
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    max_failure: Mapped[float] = mapped_column(Float)
    max_concurrent: Mapped[int] = mapped_column(Integer)
    chunk_size: Mapped[int] = mapped_column(Integer)
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow_thresholds: Mapped[dict[str, float] | None] = mapped_column(JSON)
    offer: Mapped[dict[str, Any]] = mapped_column(JSON, doc="the signed offer of the current phase")
    reason: Mapped[str | None] = mapped_column(Text, doc="why it paused / how it ended")
    acked_failures: Mapped[int] = mapped_column(Integer, default=0, doc="failures the operator resumed past")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class CampaignDevice(Base):
    """One device in one campaign: its wave and the last state it reported."""

    __tablename__ = "rollout_devices"
    __table_args__ = (
        UniqueConstraint("campaign_id", "device_id", name="uq_rollout_devices_campaign_device"),
        Index("ix_rollout_devices_campaign_wave", "campaign_id", "wave"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("rollout_campaigns.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    progress: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    shadow: Mapped[dict[str, float] | None] = mapped_column(JSON)
    offered_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
