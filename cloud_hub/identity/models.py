"""The hub's record of each device's broker identity (on the hub's one declarative Base).

Only a salted hash of the secret is stored (credentials.py); the plain secret is printed once at
``devices add`` / ``rotate`` and then exists only on the device.
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud_hub.models import Base


class DeviceCredential(Base):
    __tablename__ = "device_credentials"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255), doc="pbkdf2-sha512$iterations$salt$hash")
    group: Mapped[str | None] = mapped_column("device_group", String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    rotated_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, index=True)

    @property
    def active(self) -> bool:
        return self.revoked_at is None
