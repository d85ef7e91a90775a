"""Secrets are stored as Mosquitto-compatible hashes; the local CA issues certificates that verify."""

from __future__ import annotations

import ssl
import stat

import pytest
import yaml
from cryptography import x509

from cloud_hub.identity.certs import init_certs, issue_client_cert, load_or_create_ca
from cloud_hub.identity.credentials import SecretHash, hash_secret, new_secret, verify_secret
from cloud_hub.identity.snippet import DeviceLink, agent_config_snippet
from edge_agent.config import parse_config
from tests.support.mosquitto import REPO

EDGE_EXAMPLE = REPO / "deploy" / "edge" / "example.yaml"


def test_secret_hash_round_trip_and_rejects_wrong_secret():
    secret = new_secret()
    assert len(secret) >= 43 and secret != new_secret()
    stored = SecretHash.decode(hash_secret(secret).encode())
    assert verify_secret(secret, stored)
    assert not verify_secret(secret + "x", stored)
    assert secret not in stored.encode()


def test_ca_is_kept_and_server_certificate_verifies(tmp_path):
    ca, created, server = init_certs(tmp_path, ["broker.example.com", "10.0.0.5"])
    assert created
    again, created_again, server2 = init_certs(tmp_path, ["broker.example.com"])
    assert not created_again and again.cert == ca.cert  # re-running never replaces the fleet's CA
    cert = x509.load_pem_x509_certificate(server2.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "broker.example.com"} <= set(san.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    cert.verify_directly_issued_by(ca.cert)
    for key in (ca.paths.key, server.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ctx = ssl.create_default_context(cafile=str(ca.paths.cert))  # the CA file loads as a trust anchor
    ctx.load_cert_chain(str(server2.cert), str(server2.key))


def test_half_a_ca_is_refused(tmp_path):
    init_certs(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(FileExistsError):
        load_or_create_ca(tmp_path)


def test_client_certificate_names_the_device(tmp_path):
    ca, _, _ = init_certs(tmp_path)
    paths = issue_client_cert(ca, tmp_path / "clients", "cam-7")
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "cam-7"
    cert.verify_directly_issued_by(ca.cert)


def test_snippet_is_a_valid_agent_config_section():
    """Pasted over the ``device`` and ``mqtt`` sections of the shipped example, the agent accepts it."""
    link = DeviceLink("mqtts://hub.example:8883", "edgesight/v1", "/etc/edgesight/ca.crt")
    snippet = yaml.safe_load(agent_config_snippet("cam-7", "s3cret-XYZ", link))
    example = yaml.safe_load(EDGE_EXAMPLE.read_text())
    config = parse_config(yaml.safe_dump({**example, **snippet}), source="example+snippet")
    assert config.device.id == "cam-7" and config.device.password == "s3cret-XYZ"
    assert config.mqtt.port == 8883 and str(config.mqtt.tls.ca_file) == "/etc/edgesight/ca.crt"
