"""Server-side TLS of a listener: certificates chosen by SNI, ALPN h2 and
http/1.1, optional client certificates (mTLS); the contexts of a policy's
`terminate-tls` (`terminating_context`); and what a handshake tells the
policy (`TlsInfo`, `ClientCert`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
from functools import lru_cache
from pathlib import Path

from edgeward.config import Certificate, ListenerTls
from edgeward.hooks import ClientCert, TerminateTls, TlsInfo

_SNI_ATTR = "edgeward_server_name"


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


def tls_info(sock: ssl.SSLSocket) -> TlsInfo:
    cipher = sock.cipher()
    der = sock.getpeercert(binary_form=True)
    return TlsInfo(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        server_name=getattr(sock, _SNI_ATTR, None),
        alpn=sock.selected_alpn_protocol(),
        client_cert=client_cert(der) if der else None,
    )


def client_cert(der: bytes) -> ClientCert:
    """The fields policies match on, from a verified client certificate."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        email = tuple(san.get_values_for_type(x509.RFC822Name))
        uri = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns = email = uri = ips = ()
    return ClientCert(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        san_dns=dns,
        san_email=email,
        san_uri=uri,
        san_ip=ips,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        der=der,
    )
