"""A locked-down hub for devices that are not the Python agent (the microcontroller): Mosquitto from
the secure deploy config with dynsec, the hub app on a migrated database, the device registry that
provisions credentials in both, and the ingest worker on its own broker role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flask import Flask
from sqlalchemy.engine import Engine

from cloud_hub.identity.dynsec import DynsecAdmin
from cloud_hub.identity.registry import DeviceRegistry
from cloud_hub.identity.snippet import DeviceLink
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.web.database import ENGINE_KEY
from tests.identity.secure_broker import SecureBroker, start_secure_broker
from tests.support.hub import hub_app


@dataclass
class SecureHub:
    broker: SecureBroker
    app: Flask
    registry: DeviceRegistry
    ingest: IngestWorker

    @property
    def engine(self) -> Engine:
        return self.app.extensions[ENGINE_KEY]


@contextmanager
def secure_hub(workdir: Path, database_url: str) -> Iterator[SecureHub]:
    broker = start_secure_broker(workdir / "broker")
    try:
        with (
            hub_app(database_url, workdir) as app,
            DynsecAdmin(broker.plain, *broker.login("admin")) as admin,
        ):
            engine = app.extensions[ENGINE_KEY]
            link = DeviceLink(broker.tls.url, broker.topics.prefix, broker.tls.ca_file)
            registry = DeviceRegistry(engine, admin, broker.topics, link)
            user, password = broker.login("ingest")
            url = f"mqtt://{quote(user)}:{quote(password, safe='')}@{broker.plain.host}:{broker.plain.port}"
            ingest = IngestWorker(
                engine,
                url,
                broker.topics.prefix,
                client_id="ingest-mcu",
                share_group="hub",
                persistent_session=False,
            ).start()
            try:
                yield SecureHub(broker, app, registry, ingest)
            finally:
                ingest.stop()
    finally:
        broker.stop()
