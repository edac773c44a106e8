"""Certificates for the TLS variable tests, made with `cryptography`: a CA,
a server certificate and certificates whose names have every part the docs
list, with SANs of the four kinds and a critical extension
first (`conn.tls.client.extensions[0].critical`)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2035, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Pair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Greater London"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "London"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Example Street"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "EC2V 7AN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Ltd"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _issue(
    subject: x509.Name,
    issuer: Pair | None,
    *,
    ca: bool = False,
    serial: int,
    san: x509.SubjectAlternativeName | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Pair(cert, key)


@dataclass(frozen=True)
class Pki:
    ca: Pair
    server: Pair
    client: Pair


def make_pki() -> Pki:
    ca = _issue(_name("Edgeward Test CA"), None, ca=True, serial=0x1001)
    server = _issue(
        _name("localhost"),
        ca,
        serial=0x2002,
        san=x509.SubjectAlternativeName(
            [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.RFC822Name("ops@example.com"),
                x509.UniformResourceIdentifier("https://localhost/"),
            ]
        ),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _issue(
        _name("alice"),
        ca,
        serial=0xC0FFEE,
        san=x509.SubjectAlternativeName(
            [
                x509.DNSName("alice.example.com"),
                x509.RFC822Name("alice@example.com"),
                x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                x509.UniformResourceIdentifier("spiffe://example.com/alice"),
            ]
        ),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(ca, server, client)
