"""Provisioning against a real broker and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from cloud_hub import db as hub_db
from cloud_hub.identity.acl import device_role_name
from cloud_hub.identity.credentials import SecretHash, verify_secret
from cloud_hub.identity.dynsec import DynsecAdmin, DynsecError
from cloud_hub.identity.endpoint import BrokerEndpoint
from cloud_hub.identity.registry import DeviceRegistry, ProvisioningError
from cloud_hub.identity.snippet import DeviceLink
from tests.identity.probe import wait_until
from tests.support.mosquitto import free_port


@pytest.fixture
def engine(database_url):
    hub_db.upgrade(database_url)
    engine = hub_db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine, secure_broker, admin):
    link = DeviceLink(secure_broker.tls.url, secure_broker.topics.prefix, secure_broker.tls.ca_file)
    return DeviceRegistry(engine, admin, secure_broker.topics, link)


def _login(secure_broker, probes, device_id, secret):
    return probes(secure_broker.tls, device_id, secret, client_id=device_id).connect()


def stored_rows(engine) -> str:
    """Everything the hub keeps about devices, as text (to prove a secret is not in it)."""
    with engine.connect() as conn:
        tables = ("devices", "device_credentials")
        return repr([conn.execute(text(f"SELECT * FROM {table}")).fetchall() for table in tables])


def test_add_prints_a_working_config_once_and_stores_only_a_hash(registry, engine, secure_broker, probes):
    issued = registry.add("cam-01", group="canary", tags=["street", "north", "street"])
    snippet = yaml.safe_load(issued.snippet)
    assert snippet["device"] == {"id": "cam-01", "password": issued.secret}
    assert snippet["mqtt"]["url"] == secure_broker.tls.url
    assert not _login(secure_broker, probes, "cam-01", snippet["device"]["password"]).is_failure

    assert issued.secret not in stored_rows(engine)
    cred = registry.get("cam-01")
    assert verify_secret(issued.secret, SecretHash.decode(cred.secret_hash))
    assert (cred.group, cred.tags, cred.active) == ("canary", ["north", "street"], True)

    with pytest.raises(ProvisioningError, match="already"):
        registry.add("cam-01")
    assert not _login(secure_broker, probes, "cam-01", issued.secret).is_failure  # untouched


def test_rotate_and_revoke(registry, secure_broker, probes, admin):
    first = registry.add("cam-02")
    live = probes(secure_broker.tls, "cam-02", first.secret, client_id="cam-02")
    assert not live.connect().is_failure

    second = registry.rotate("cam-02")
    assert wait_until(live.disconnected.is_set)
    assert _login(secure_broker, probes, "cam-02", first.secret).is_failure
    live = probes(secure_broker.tls, "cam-02", second.secret, client_id="cam-02")
    assert not live.connect().is_failure

    registry.revoke("cam-02")
    assert wait_until(live.disconnected.is_set, timeout=5.0)
    assert _login(secure_broker, probes, "cam-02", second.secret).is_failure
    assert registry.get("cam-02").revoked_at is not None
    assert admin.get_client("cam-02") is None
    with pytest.raises(ProvisioningError, match="revoked"):
        registry.rotate("cam-02")

    again = registry.add("cam-02")  # re-enrol (e.g. the replacement camera)
    assert not _login(secure_broker, probes, "cam-02", again.secret).is_failure


def test_a_broker_refusal_leaves_nothing_half_made(registry, admin):
    # The broker already has a client of that name (made out of band, without our role).
    admin.execute([{"command": "createClient", "username": "cam-03", "password": "set-out-of-band"}])
    with pytest.raises(DynsecError, match="already exists"):
        registry.add("cam-03")
    assert registry.get("cam-03") is None  # no database record
    role = admin.execute(
        [{"command": "getRole", "rolename": device_role_name("cam-03")}], allow_errors={"Role not found"}
    )[0]
    assert role.get("error") == "Role not found"  # and the role made for it was removed again


def test_unknown_devices_and_bad_names_are_clear_errors(registry):
    with pytest.raises(ProvisioningError, match="no credentials"):
        registry.revoke("cam-nobody")
    with pytest.raises(ValueError, match="invalid device id"):
        registry.add("cam/evil")


def test_broker_admin_problems_are_clear_errors(secure_broker):
    with pytest.raises(DynsecError, match="refused the admin login"):
        DynsecAdmin(secure_broker.plain, "edgesight-admin", "wrong", timeout=5).connect()
    with pytest.raises(DynsecError, match="cannot reach the broker"):
        DynsecAdmin(BrokerEndpoint("127.0.0.1", free_port()), "edgesight-admin", "x", timeout=5).connect()
    ingest_only = DynsecAdmin(secure_broker.plain, *secure_broker.login("ingest"), timeout=5)
    with pytest.raises(DynsecError, match="refused"):  # a service login cannot manage the broker
        ingest_only.connect()


def test_group_and_tag_labels_are_checked(registry):
    with pytest.raises(ProvisioningError, match="group/tag"):
        registry.add("cam-04", group="x" * 65)
    with pytest.raises(ProvisioningError, match="group/tag"):
        registry.add("cam-04", tags=["ok", "<script>"])
    assert registry.get("cam-04") is None
