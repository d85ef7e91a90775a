"""Tables for the camera view: one latest preview per camera, one remote-config record per device."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud_hub.models import Base


class CameraPreview(Base):
    """Only the latest frame per camera is kept: a preview is a view, not a recording."""

    __tablename__ = "camera_previews"

    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    boxes: Mapped[list[Any] | None] = mapped_column(JSON)
    zones: Mapped[list[Any] | None] = mapped_column(JSON)
    lines: Mapped[list[Any] | None] = mapped_column(JSON)
    received_at: Mapped[float] = mapped_column(Float)


class DeviceConfig(Base):
    """The remote config the hub asked for (desired) and what the agent last answered (reported)."""

    __tablename__ = "device_configs"

    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    desired_id: Mapped[str | None] = mapped_column(String(64))
    desired: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    desired_at: Mapped[float | None] = mapped_column(Float)
    desired_by: Mapped[str | None] = mapped_column(String(64))
    reported_id: Mapped[str | None] = mapped_column(String(64))
    reported_state: Mapped[str | None] = mapped_column(String(16))
    reported_reason: Mapped[str | None] = mapped_column(Text)
    reported_cameras: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reported_at: Mapped[float | None] = mapped_column(Float)
