"""A local certificate authority for sites without their own PKI (``cloud-hub certs init``).

Creates an ECDSA P-256 CA, a broker (server) certificate whose subjectAltName always includes
``localhost`` and ``127.0.0.1`` plus the names the user gives, and optionally client certificates with
the device id as common name. Private keys are written 0600. An existing CA is reused, never silently
replaced: every device in the field trusts it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity clients such as browsers and Apple platforms accept


@dataclass(frozen=True)
class CertPaths:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    paths: CertPaths


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgesight"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def load_or_create_ca(directory: Path, common_name: str = "edgesight local CA") -> tuple[Authority, bool]:
    """The CA in ``directory`` (ca.crt, ca.key), created if absent; returns (authority, created)."""
    paths = CertPaths(directory / "ca.crt", directory / "ca.key")
    if paths.cert.exists() and paths.key.exists():
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.key}: expected an EC private key")
        return Authority(cert, key, paths), False
    if paths.cert.exists() or paths.key.exists():
        raise FileExistsError(f"{directory}: only one of ca.crt / ca.key exists; refusing to guess")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(paths.key, key)
    _write_cert(paths.cert, cert)
    return Authority(cert, key, paths), True


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issue(
    ca: Authority, common_name: str, usage: x509.ObjectIdentifier, alt_names: list[str], out: CertPaths
) -> CertPaths:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(n) for n in alt_names]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    out.cert.parent.mkdir(parents=True, exist_ok=True)
    _write_key(out.key, key)
    _write_cert(out.cert, cert)
    return out


def issue_server_cert(ca: Authority, directory: Path, names: list[str] = ()) -> CertPaths:
    """Broker certificate for localhost, 127.0.0.1 and ``names`` (host names or IP addresses)."""
    alt = list(dict.fromkeys(["localhost", "127.0.0.1", *names]))
    return _issue(
        ca,
        alt[2] if len(alt) > 2 else "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        alt,
        CertPaths(directory / "server.crt", directory / "server.key"),
    )


def issue_client_cert(ca: Authority, directory: Path, device_id: str) -> CertPaths:
    """Optional client certificate (CN = device id) for listeners with ``require_certificate true``."""
    return _issue(
        ca,
        device_id,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
        CertPaths(directory / f"{device_id}.crt", directory / f"{device_id}.key"),
    )


def init_certs(directory: Path, names: list[str] = ()) -> tuple[Authority, bool, CertPaths]:
    """``certs init``: the CA (reused when present) and a fresh server certificate."""
    ca, created = load_or_create_ca(directory)
    return ca, created, issue_server_cert(ca, directory, list(names))
