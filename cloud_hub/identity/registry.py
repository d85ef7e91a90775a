"""Provisioning: add, rotate and revoke devices in the hub database and the broker together.

The order of the two writes is chosen so a failure halfway leaves the safe side: a device is only in
the database once the broker accepted it (add), and the broker drops a revoked device before the
database says so (revoke). With no broker admin configured (the embedded demo broker, which trusts
its LAN) only the database is written and the caller is told.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud_hub.models import Device
from shared.topics import Topics, validate_device_id

from .credentials import hash_secret, new_secret
from .models import DeviceCredential
from .snippet import DeviceLink, agent_config_snippet

LABEL_RE = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")


class ProvisioningError(RuntimeError):
    """A request that cannot be done as asked (unknown device, already exists, revoked...)."""


class BrokerAuthority(Protocol):
    """What the registry needs from the broker (DynsecAdmin implements it)."""

    def create_device(self, topics: Topics, device_id: str, password: str) -> None: ...

    def set_password(self, device_id: str, password: str) -> None: ...

    def delete_device(self, device_id: str) -> None: ...


@dataclass(frozen=True)
class Provisioned:
    device_id: str
    secret: str
    snippet: str


class DeviceRegistry:
    def __init__(self, engine: Engine, broker: BrokerAuthority | None, topics: Topics, link: DeviceLink):
        self.engine = engine
        self.broker = broker
        self.topics = topics
        self.link = link

    def _issued(self, device_id: str, secret: str) -> Provisioned:
        return Provisioned(device_id, secret, agent_config_snippet(device_id, secret, self.link))

    def add(self, device_id: str, group: str | None = None, tags: Iterable[str] = ()) -> Provisioned:
        """A new device (or a revoked one re-enrolled) with a fresh secret."""
        validate_device_id(device_id)
        tags = sorted(set(tags))
        for label in (group, *tags):
            if label is not None and not LABEL_RE.match(label):
                raise ProvisioningError(f"group/tag {label!r}: 1-64 letters, digits, '_', '.', '-', ' '")
        secret = new_secret()
        now = time.time()
        with Session(self.engine) as session:
            cred = session.get(DeviceCredential, device_id)
            if cred is not None and cred.active:
                raise ProvisioningError(f"device {device_id!r} already has credentials (use rotate)")
            if session.get(Device, device_id) is None:
                session.add(Device(id=device_id, first_seen=now, last_seen=now, state="unknown"))
                session.flush()  # the device row first: the credential's foreign key points at it
            if cred is None:
                cred = DeviceCredential(device_id=device_id, created_at=now)
                session.add(cred)
            cred.secret_hash = hash_secret(secret).encode()
            cred.group, cred.tags = group, tags
            cred.rotated_at, cred.revoked_at = None, None
            session.flush()  # constraint errors surface before the broker is touched
            if self.broker is not None:
                self.broker.create_device(self.topics, device_id, secret)
            try:
                session.commit()
            except Exception:
                if self.broker is not None:
                    self.broker.delete_device(device_id)
                raise
        return self._issued(device_id, secret)

    def rotate(self, device_id: str) -> Provisioned:
        """A new secret; the old one stops working and the live session is dropped at once."""
        secret = new_secret()
        with Session(self.engine) as session:
            cred = self._active(session, device_id)
            cred.secret_hash = hash_secret(secret).encode()
            cred.rotated_at = time.time()
            session.flush()
            if self.broker is not None:
                self.broker.set_password(device_id, secret)
            session.commit()
        return self._issued(device_id, secret)

    def revoke(self, device_id: str) -> None:
        """Drop the device from the broker first (its connection ends now), then record it."""
        with Session(self.engine) as session:
            cred = self._active(session, device_id)
            if self.broker is not None:
                self.broker.delete_device(device_id)
            cred.revoked_at = time.time()
            session.commit()

    def list(self) -> list[DeviceCredential]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(DeviceCredential).order_by(DeviceCredential.device_id)))

    def get(self, device_id: str) -> DeviceCredential | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(DeviceCredential, device_id)

    @staticmethod
    def _active(session: Session, device_id: str) -> DeviceCredential:
        cred = session.get(DeviceCredential, device_id)
        if cred is None:
            raise ProvisioningError(f"device {device_id!r} has no credentials (use add)")
        if not cred.active:
            raise ProvisioningError(f"device {device_id!r} was revoked (add it again to re-enrol)")
        return cred
