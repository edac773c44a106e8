"""Server-side TLS of a listener: certificates chosen by SNI, ALPN h2 and
http/1.1, optional client certificates (mTLS); the contexts of a policy's
`terminate-tls` (`terminating_context`); and what a handshake tells the
policy (`TlsInfo`, `ClientCert`): the certificates, whether the session was
resumed, and the ClientHello as sent (`peek_client_hello`, for JA4)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import tempfile
from functools import lru_cache
from pathlib import Path

import trio

from edgeward.config import Certificate, ListenerTls
from edgeward.hooks import CertExtension, ClientCert, DistinguishedName, TerminateTls, TlsInfo

_SNI_ATTR = "edgeward_server_name"
_CERT_ATTR = "edgeward_server_cert"  # on each context: the certificate it presents
# The most ClientHello bytes read ahead of the handshake: one full TLS record
# (2^14 + header) holds every ClientHello seen in practice, post-quantum key
# shares included; a larger one gets no fingerprint.
HELLO_LIMIT = 16384 + 5


def server_context(tls: ListenerTls, *, http2: bool) -> ssl.SSLContext:
    """The listener's context; it switches to the certificate whose names
    match the client's SNI (exact, then wildcard), else keeps the first."""
    contexts = [_one_context(tls, c.cert, c.key, http2) for c in tls.certificates]
    exact: dict[str, ssl.SSLContext] = {}
    wildcard: dict[str, ssl.SSLContext] = {}
    for cert, ctx in zip(tls.certificates, contexts, strict=True):
        for name in cert.hostnames:
            table = wildcard if name.startswith("*.") else exact
            table.setdefault(name.removeprefix("*."), ctx)
    default = contexts[0]

    def choose(
        sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        setattr(sock, _SNI_ATTR, server_name)
        if not server_name:
            return
        name = server_name.lower().rstrip(".")
        chosen = exact.get(name)
        if chosen is None:
            _, _, parent = name.partition(".")
            chosen = wildcard.get(parent)
        if chosen is not None and chosen is not _ctx:
            sock.context = chosen

    default.sni_callback = choose
    return default


def _one_context(tls: ListenerTls, cert: object, key: object, http2: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    setattr(ctx, _CERT_ATTR, _presented(str(cert)))
    ctx.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.client_ca is not None:
        ctx.load_verify_locations(cafile=str(tls.client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.client_cert == "required" else ssl.CERT_OPTIONAL
    return ctx


_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def terminating_context(
    settings: TerminateTls, listener: ListenerTls | None, server_name: str | None
) -> ssl.SSLContext:
    """The context of a `terminate-tls` (a tls endpoint's connection): its
    versions, its certificate or else the listener's for `server_name`, and
    its client CAs. Cached per settings and certificate files (a rotated
    file makes a new one). Raises `ssl.SSLError`/`OSError`/`ValueError`
    for what cannot be loaded."""
    files = None
    if settings.certificate is None:
        if listener is None or not listener.certificates:
            raise ValueError("no certificate: the listener has none and the action gives none")
        chosen = _for_name(listener.certificates, server_name)
        files = (chosen.cert, chosen.key, chosen.cert.stat().st_mtime_ns)
    return _terminating_context(settings, files)


def _for_name(certificates: tuple[Certificate, ...], server_name: str | None) -> Certificate:
    """The listener's certificate for a name, as `server_context` picks it."""
    name = (server_name or "").lower().rstrip(".")
    _, _, parent = name.partition(".")
    for wanted in (name, f"*.{parent}"):
        for cert in certificates:
            if name and wanted in cert.hostnames:
                return cert
    return certificates[0]


@lru_cache(maxsize=64)
def _terminating_context(
    settings: TerminateTls, files: tuple[Path, Path, int] | None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[settings.min_version]
    ctx.maximum_version = _VERSIONS[settings.max_version]
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if files is not None:
        ctx.load_cert_chain(str(files[0]), str(files[1]))
    else:
        assert settings.certificate is not None and settings.private_key is not None
        _load_pem_chain(ctx, settings.certificate, settings.private_key)
    if settings.client_cas:
        ctx.load_verify_locations(cadata="\n".join(ca.strip() for ca in settings.client_cas))
        # Never an unverified client certificate (docs/policy.md, terminate-tls):
        # `request` lets it be absent, the others require it.
        optional = settings.client_verify == "request"
        ctx.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
    return ctx


def _load_pem_chain(ctx: ssl.SSLContext, certificate: str, private_key: str) -> None:
    """`load_cert_chain` reads files only: the PEMs go through an anonymous
    memory file (Linux), else a private temporary file removed at once."""
    data = f"{certificate.strip()}\n{private_key.strip()}\n".encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("edgeward-terminate-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as tmp:  # mode 0700
        path = Path(tmp) / "chain.pem"
        path.write_bytes(data)
        try:
            ctx.load_cert_chain(str(path))
        finally:
            with contextlib.suppress(OSError):
                path.unlink()


def _presented(path: str) -> ClientCert | None:
    """The first certificate of a chain file: what the edge presents."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        with open(path, "rb") as f:
            chain = x509.load_pem_x509_certificates(f.read())
    except (OSError, ValueError):
        return None
    return certificate(chain[0].public_bytes(Encoding.DER)) if chain else None


async def peek_client_hello(sock: socket.socket) -> bytes:
    """The TLS records of the ClientHello, read with MSG_PEEK before the
    handshake (which then reads them again): at most `HELLO_LIMIT` bytes,
    waiting for the rest while the first record is incomplete. b"" when the
    peer sends something else or closes; the caller bounds the time."""
    want, seen = 5, -1
    while True:
        await trio.lowlevel.wait_readable(sock)
        try:
            data = sock.recv(HELLO_LIMIT, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        except OSError:
            return b""
        if not data or data[0] != 0x16:
            return b""
        if len(data) >= 5:
            want = min(5 + int.from_bytes(data[3:5], "big"), HELLO_LIMIT)
        if len(data) >= want:
            return data[:want]
        if len(data) == seen:
            # Readable with nothing new: more than the kernel holds is
            # needed; a short sleep instead of spinning on the same bytes.
            await trio.sleep(0.002)
        seen = len(data)


def tls_info(sock: ssl.SSLSocket, client_hello: bytes = b"") -> TlsInfo:
    cipher = sock.cipher()
    der = sock.getpeercert(binary_form=True)
    return TlsInfo(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        server_name=getattr(sock, _SNI_ATTR, None),
        alpn=sock.selected_alpn_protocol(),
        client_cert=certificate(der) if der else None,
        server_cert=getattr(sock.context, _CERT_ATTR, None),
        session_resumed=bool(sock.session_reused),
        client_hello=client_hello,
    )


# Go's names (crypto/x509 SignatureAlgorithm.String), by signature OID.
_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.4": "MD5-RSA",
    "1.2.840.113549.1.1.5": "SHA1-RSA",
    "1.2.840.113549.1.1.11": "SHA256-RSA",
    "1.2.840.113549.1.1.12": "SHA384-RSA",
    "1.2.840.113549.1.1.13": "SHA512-RSA",
    "1.2.840.10040.4.3": "DSA-SHA1",
    "2.16.840.1.101.3.4.3.2": "DSA-SHA256",
    "1.2.840.10045.4.1": "ECDSA-SHA1",
    "1.2.840.10045.4.3.2": "ECDSA-SHA256",
    "1.2.840.10045.4.3.3": "ECDSA-SHA384",
    "1.2.840.10045.4.3.4": "ECDSA-SHA512",
    "1.3.101.112": "Ed25519",
}
_RSA_PSS = "1.2.840.113549.1.1.10"


def _signature_algorithm(cert: object) -> str:
    oid = cert.signature_algorithm_oid.dotted_string  # type: ignore[attr-defined]
    if oid == _RSA_PSS:
        digest = cert.signature_hash_algorithm  # type: ignore[attr-defined]
        return f"{digest.name.upper()}-RSAPSS" if digest is not None else "RSASSA-PSS"
    return _SIGNATURE_NAMES.get(str(oid), str(oid))


def _name(name: object) -> DistinguishedName:
    from cryptography.x509.oid import NameOID

    def values(oid: object) -> tuple[str, ...]:
        return tuple(
            str(a.value)
            for a in name.get_attributes_for_oid(oid)  # type: ignore[attr-defined]
        )

    common = values(NameOID.COMMON_NAME)
    return DistinguishedName(
        text=name.rfc4514_string(),  # type: ignore[attr-defined]
        common_name=common[-1] if common else "",  # Go keeps the last one
        country=values(NameOID.COUNTRY_NAME),
        locality=values(NameOID.LOCALITY_NAME),
        organization=values(NameOID.ORGANIZATION_NAME),
        organizational_unit=values(NameOID.ORGANIZATIONAL_UNIT_NAME),
        postal_code=values(NameOID.POSTAL_CODE),
        province=values(NameOID.STATE_OR_PROVINCE_NAME),
        street_address=values(NameOID.STREET_ADDRESS),
    )


def _extension_value(extension: object) -> bytes:
    value = extension.value  # type: ignore[attr-defined]
    try:
        return bytes(value.public_bytes())
    except (AttributeError, NotImplementedError, ValueError):
        raw = getattr(value, "value", b"")  # an UnrecognizedExtension
        return raw if isinstance(raw, bytes) else b""


def certificate(der: bytes) -> ClientCert:
    """The fields policies match on, from a certificate (the client's,
    verified; or the edge's own)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        email = tuple(san.get_values_for_type(x509.RFC822Name))
        uri = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns = email = uri = ips = ()
    subject, issuer = _name(cert.subject), _name(cert.issuer)
    return ClientCert(
        subject=subject.text,
        issuer=issuer.text,
        serial_number=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        san_dns=dns,
        san_email=email,
        san_uri=uri,
        san_ip=ips,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        der=der,
        subject_name=subject,
        issuer_name=issuer,
        signature_algorithm=_signature_algorithm(cert),
        extensions=tuple(
            CertExtension(e.oid.dotted_string, e.critical, _extension_value(e))
            for e in cert.extensions
        ),
        pem=cert.public_bytes(Encoding.PEM).decode("ascii"),
    )
