"""Acceptance (issue 7): who may connect at all — over TLS that the client verifies — and revocation.

Each refusal is checked beside a positive control (the right credentials on the same listener connect),
so a broker that refused everything would fail these tests too.
"""

from __future__ import annotations

import ssl

import pytest

from cloud_hub.identity.certs import init_certs, issue_client_cert, load_or_create_ca
from cloud_hub.identity.credentials import new_secret
from cloud_hub.identity.endpoint import BrokerEndpoint
from tests.identity.probe import wait_until
from tests.identity.secure_broker import start_secure_broker

REVOCATION_DEADLINE_S = 5.0


def _refused(rc) -> bool:
    return rc is not None and rc.is_failure


@pytest.mark.parametrize("listener", ["plain", "tls"])
def test_only_known_devices_with_the_right_secret_connect(secure_broker, devices, probes, listener):
    endpoint = getattr(secure_broker, listener)
    a = devices["cam-a"]
    assert _refused(probes(endpoint).connect()), "anonymous"
    assert _refused(probes(endpoint, a.device_id, "wrong-" + a.password, client_id=a.device_id).connect())
    assert _refused(probes(endpoint, "cam-unknown", a.password, client_id="cam-unknown").connect())
    assert _refused(probes(endpoint, a.device_id, "", client_id=a.device_id).connect()), "empty password"
    assert not probes(endpoint, a.device_id, a.password, client_id=a.device_id).connect().is_failure


def test_a_client_that_trusts_another_ca_refuses_the_broker(secure_broker, devices, probes, tmp_path):
    other_ca, _, _ = init_certs(tmp_path / "other-ca")
    a = devices["cam-a"]
    wrong = BrokerEndpoint("127.0.0.1", secure_broker.tls_port, tls=True, ca_file=str(other_ca.paths.cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        probes(wrong, a.device_id, a.password, client_id=a.device_id).connect()
    right = probes(secure_broker.tls, a.device_id, a.password, client_id=a.device_id)
    assert not right.connect().is_failure


def test_revoked_device_is_disconnected_within_5_s_and_refused_after(secure_broker, devices, admin, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    live = probes(secure_broker.tls, a.device_id, a.password, client_id=a.device_id)
    assert not live.connect().is_failure
    bystander = probes(secure_broker.tls, b.device_id, b.password, client_id=b.device_id)
    assert not bystander.connect().is_failure

    admin.delete_device(a.device_id)

    assert wait_until(live.disconnected.is_set, timeout=REVOCATION_DEADLINE_S)
    assert _refused(probes(secure_broker.tls, a.device_id, a.password, client_id=a.device_id).connect())
    assert bystander.connected
    assert admin.get_client(a.device_id) is None


def test_rotation_ends_the_old_secret_and_its_session(secure_broker, devices, admin, probes):
    a = devices["cam-a"]
    live = probes(secure_broker.tls, a.device_id, a.password, client_id=a.device_id)
    assert not live.connect().is_failure
    fresh = new_secret()

    admin.set_password(a.device_id, fresh)

    assert wait_until(live.disconnected.is_set, timeout=REVOCATION_DEADLINE_S)
    assert _refused(probes(secure_broker.tls, a.device_id, a.password, client_id=a.device_id).connect())
    assert not probes(secure_broker.tls, a.device_id, fresh, client_id=a.device_id).connect().is_failure


def test_optional_client_certificates(tmp_path, probes):
    """With ``require_certificate true`` a device needs a certificate from the CA *and* its password."""
    broker = start_secure_broker(tmp_path / "broker", extra_tls="require_certificate true")
    try:
        from cloud_hub.identity.dynsec import DynsecAdmin

        secret = new_secret()
        with DynsecAdmin(broker.plain, *broker.login("admin")) as admin:
            admin.create_device(broker.topics, "cam-c", secret)
        ca, created = load_or_create_ca(broker.certs)
        assert not created
        cert = issue_client_cert(ca, tmp_path / "client", "cam-c")
        with_cert = BrokerEndpoint(
            "127.0.0.1",
            broker.tls_port,
            tls=True,
            ca_file=broker.tls.ca_file,
            cert_file=str(cert.cert),
            key_file=str(cert.key),
        )

        no_cert = probes(broker.tls, "cam-c", secret, client_id="cam-c")
        try:
            rc = no_cert.connect()
        except (ssl.SSLError, OSError):
            rc = None  # the handshake itself failed: equally refused
        assert rc is None or rc.is_failure
        assert not no_cert.connected
        assert _refused(probes(with_cert, "cam-c", "wrong", client_id="cam-c").connect())
        assert not probes(with_cert, "cam-c", secret, client_id="cam-c").connect().is_failure
    finally:
        broker.stop()
