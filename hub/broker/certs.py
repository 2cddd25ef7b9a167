"""Certificates for the secure local broker: a local CA and one broker certificate.

Generated with the ``cryptography`` package into the state folder (never the repository). The
broker reads a PKCS#12 keystore (key + chain) and a PEM truststore (the CA); clients only need the
CA file. The broker certificate serves TLS to clients (SAN 127.0.0.1 and localhost) and also
authenticates the broker to its own controller listener (mutual TLS), so it carries both the
server and client extended key usages. Its subject is the broker's super-user principal there.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_CN = "netral-local-broker"
# Kafka's default SSL principal is the full subject DN as RFC 2253 prints it.
BROKER_PRINCIPAL = f"User:CN={BROKER_CN},O=netral"


@dataclass(frozen=True)
class BrokerCerts:
    """Where the generated material lives; ``keystore_password`` protects the PKCS#12 file."""

    ca_file: Path
    keystore_file: Path
    keystore_password: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netral"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the start (no window where the file is world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def ensure_certs(folder: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                 days: int = 825) -> BrokerCerts:
    """Create the CA and broker certificate in ``folder`` once; later calls reuse them."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_file, ks_file, pw_file = folder / "ca.pem", folder / "broker.p12", folder / "keystore.pw"
    if ca_file.exists() and ks_file.exists() and pw_file.exists():
        return BrokerCerts(ca_file, ks_file, pw_file.read_text().strip())
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("netral local CA")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder().subject_name(_name(BROKER_CN)).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(24)
    p12 = pkcs12.serialize_key_and_certificates(
        b"broker", key, cert, [ca], serialization.BestAvailableEncryption(password.encode()))
    _write_private(ks_file, p12)
    _write_private(pw_file, password.encode())
    # The CA key is not kept: nothing else is ever signed, so a stolen state folder cannot
    # mint new identities for the broker.
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return BrokerCerts(ca_file, ks_file, password)
