"""Database schema (SQLAlchemy 2 declarative). Times are UNIX seconds as floats, like the wire.

Every query the dashboard and API run has an index here; the benchmark (benchmarks/dashboard.py)
checks that they stay fast at a million events.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for a big table.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Device(Base):
    """The registry: created on a device's first message, refreshed by status and telemetry."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float, index=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    status_ts: Mapped[float | None] = mapped_column(Float)
    agent_version: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    uptime_s: Mapped[float | None] = mapped_column(Float)
    cameras: Mapped[list[str] | None] = mapped_column(JSON)
    fps: Mapped[float | None] = mapped_column(Float)
    inference_ms_p50: Mapped[float | None] = mapped_column(Float)
    telemetry_ts: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(String(128), doc="operator-given label")
    site: Mapped[str | None] = mapped_column(String(128))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id", name="uq_events_device_event"),
        Index("ix_events_ts_id", "ts", "id"),
        Index("ix_events_device_ts_id", "device_id", "ts", "id"),
        Index("ix_events_label_ts_id", "label", "ts", "id"),
        Index("ix_events_kind_ts_id", "kind", "ts", "id"),
        Index("ix_events_line_ts", "line", "ts"),
        Index("ix_events_zone_ts", "zone", "ts"),
        Index("ix_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[float] = mapped_column(Float)
    camera: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    bbox: Mapped[list[float] | None] = mapped_column(JSON)
    track_id: Mapped[int | None] = mapped_column(BigInteger)
    zone: Mapped[str | None] = mapped_column(String(128))
    line: Mapped[str | None] = mapped_column(String(128))
    direction: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int | None] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(128))
    has_snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[float] = mapped_column(Float, doc="hub clock when the batch was committed")


class Snapshot(Base):
    """A JPEG for one event, stored on disk under its sha256 (identical images share one file)."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("device_id", "event_id", name="uq_snapshots_device_event"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(256), doc="relative to the snapshot directory")
    size_bytes: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[float] = mapped_column(Float, index=True)


class Telemetry(Base):
    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_device_ts", "device_id", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id", ondelete="CASCADE"))
    ts: Mapped[float] = mapped_column(Float)
    camera: Mapped[str] = mapped_column(String(64))
    fps_in: Mapped[float] = mapped_column(Float)
    fps_processed: Mapped[float] = mapped_column(Float)
    inference_ms_p50: Mapped[float | None] = mapped_column(Float)
    inference_ms_p95: Mapped[float | None] = mapped_column(Float)
    cnn_frame_share: Mapped[float | None] = mapped_column(Float)
    motion_ratio: Mapped[float | None] = mapped_column(Float)
    outbox_depth: Mapped[int] = mapped_column(BigInteger)
    frames_dropped: Mapped[int] = mapped_column(BigInteger)
    events_dropped: Mapped[int] = mapped_column(BigInteger)
    thread_restarts: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cpu_temp_c: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float)


class DeadLetter(Base):
    """A message ingest refused, kept whole with the reason so nobody has to guess later."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary, doc="the body's first 4 KiB (all of a small one)")
    payload_size: Mapped[int | None] = mapped_column(BigInteger, doc="the whole body's size in bytes")
    payload_sha256: Mapped[str | None] = mapped_column(String(64), doc="sha256 of the whole body")
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[float] = mapped_column(Float, index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(Base):
    """Bearer tokens for scripts; only the sha256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class LoginFailure(Base):
    """Failed logins per client address, shared by every web worker (the rate limit reads it)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_client_at", "client", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(128))
    at: Mapped[float] = mapped_column(Float)


class WebSession(Base):
    """A dashboard login, referenced by the signed session cookie: logout and a password change delete
    it, so a copied cookie stops working at once (the cookie alone proves nothing)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
