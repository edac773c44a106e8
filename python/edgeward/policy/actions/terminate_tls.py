"""`terminate-tls` (reference §3.19): the edge terminates the client's TLS
itself, with the action's versions, certificate and mutual TLS, in
`on_tcp_connect` of a `tls` endpoint (whose bytes it otherwise passes
through untouched); the decrypted bytes then go on as plain TCP.

Sans-IO: the action checks and renders its settings and yields a
`TerminateTls` effect; the proxy performs the handshake and answers with a
`TlsTerminated`. A failed handshake closes the connection. Where TLS was
already terminated by the listener (an `https` endpoint), the driver says
so and the action checks that handshake against its settings: a version
outside the range, a certificate of its own, or a client certificate its
CAs did not issue closes the connection (fail closed), never a silent
downgrade.

A client certificate is only ever accepted verified against
`mutual_tls_certificate_authorities`: under `request` it may be absent,
under `require-and-verify` and `require-any` it is required. An unverified
certificate's subject is whatever the client wrote, and rules match on it
(`actions.ngrok.terminate_tls.client.subject`), so `require-any` verifies
too (a load warning says so).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from functools import lru_cache
from typing import Any, Self

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from edgeward import native
from edgeward.document import describe
from edgeward.hooks import Effect, EffectResult, TerminateTls, TlsInfo
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    ActionError,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.config import InvalidConfig, constant
from edgeward.policy.variables import tls_values

VERSIONS = ("1.2", "1.3")
STRATEGIES = ("require-and-verify", "require-any", "request")
_STDLIB_VERSION = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}  # as `conn.tls.version` reads


class TerminateTlsAction(Action):
    type = "terminate-tls"
    phases = frozenset({Phase.TCP_CONNECT})

    def __init__(
        self,
        *,
        min_version: str,
        max_version: str,
        certificate: native.Template | None,
        private_key: native.Template | None,
        cas: Sequence[native.Template],
        strategy: str,
    ) -> None:
        self.min_version = min_version
        self.max_version = max_version
        self.certificate = certificate
        self.private_key = private_key
        self.cas = tuple(cas)
        self.strategy = strategy
        constant_settings = all(
            t is None or t.is_constant for t in (certificate, private_key, *cas)
        )
        self.static = self._settings(None) if constant_settings else None

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        low = _version(config, "min_version", "1.2")
        high = _version(config, "max_version", "1.3")
        if low > high:
            config.fail("min_version", f"min_version {low} is above max_version {high}")
        certificate = config.template("server_certificate")
        private_key = config.template("server_private_key")
        if (certificate is None) != (private_key is None):
            given = "server_certificate" if certificate is not None else "server_private_key"
            config.fail(given, "server_certificate and server_private_key must be given together")
        if (
            certificate is not None
            and private_key is not None
            and certificate.is_constant
            and private_key.is_constant
        ):
            problem = check_pair(constant(certificate), constant(private_key))
            if problem is not None:
                key = "server_private_key" if problem[0] == "key" else "server_certificate"
                config.fail(key, problem[1])
        cas = _cas(config)
        strategy = config.string(
            "mutual_tls_verification_strategy", default="require-and-verify", choices=STRATEGIES
        )
        assert strategy is not None
        if config.has("mutual_tls_verification_strategy") and not cas:
            config.warn(
                "mutual_tls_verification_strategy",
                "no mutual_tls_certificate_authorities: no client certificate is asked for",
            )
        elif cas and strategy == "require-any":
            config.warn(
                "mutual_tls_verification_strategy",
                "require-any: edgeward verifies the client certificate against "
                "mutual_tls_certificate_authorities all the same (an unverified certificate's "
                "names are the client's word); as require-and-verify",
            )
        elif cas and strategy == "request":
            config.warn(
                "mutual_tls_verification_strategy",
                "request: a client certificate may be absent, but one that is given is "
                "verified against mutual_tls_certificate_authorities",
            )
        return cls(
            min_version=low,
            max_version=high,
            certificate=certificate,
            private_key=private_key,
            cas=cas,
            strategy=strategy,
        )

    def _settings(self, ctx: ActionContext | None) -> TerminateTls:
        """The effect for this connection: templates rendered (with `ctx`;
        None: all are constant) and checked. A rendered value that is not
        what it must be raises `ActionError` (the connection is closed)."""

        def text(template: native.Template) -> str:
            return constant(template) if ctx is None else ctx.render(template)

        certificate = private_key = None
        if self.certificate is not None and self.private_key is not None:
            certificate, private_key = text(self.certificate), text(self.private_key)
            if ctx is not None:
                problem = check_pair(certificate, private_key)
                if problem is not None:
                    raise ActionError(ErrorCode.TLS_FAILED, problem[1])
        cas = []
        for template in self.cas:
            bundle = text(template)
            if ctx is not None and not template.is_constant:
                problem_ca = check_cas(bundle)
                if problem_ca is not None:
                    raise ActionError(ErrorCode.TLS_FAILED, problem_ca)
            cas.append(bundle)
        return TerminateTls(
            min_version=self.min_version,
            max_version=self.max_version,
            certificate=certificate,
            private_key=private_key,
            client_cas=tuple(cas),
            client_verify=self.strategy,
        )

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        settings = self.static or self._settings(ctx)
        result = yield from ctx.terminate_tls(settings)
        problem = result.error if result.info is None else ""
        if result.info is not None and result.by_listener:
            problem = unsatisfied(settings, result.info) or ""
        if problem:
            message = f"TLS not terminated as the policy asks: {problem}"
            ctx.record(
                "terminate_tls",
                {"warnings": [], "error": {"code": ErrorCode.TLS_FAILED.value, "message": message}},
            )
            return Decision.close(message, verdict="deny")
        values: dict[str, Any] = dict(tls_values(ctx.conn) or {})
        values["warnings"] = (
            ["the listener terminated TLS; its handshake satisfies the action"]
            if result.by_listener
            else []
        )
        ctx.record("terminate_tls", values)
        return None


def _version(config: ConfigReader, key: str, default: str) -> str:
    raw = config.value(key)
    if raw is None:
        return default
    # `min_version: 1.3` without quotes is a YAML float: the same version.
    text = f"{raw:.1f}" if isinstance(raw, float) else raw if isinstance(raw, str) else None
    if text not in VERSIONS:
        config.fail(key, f"{key} must be one of {', '.join(VERSIONS)}, not {describe(raw)}")
    assert text is not None
    return text


def _cas(config: ConfigReader) -> list[native.Template]:
    key = "mutual_tls_certificate_authorities"
    raw = config.value(key)
    if raw is None:
        return []
    if isinstance(raw, str):  # one PEM given as a string (agent CLI snippets do)
        config.warn(key, f"{key} is a list; one string is read as a list of one")
        templates = [config.compile_template((*config.path, key), raw)]
        paths: list[tuple[str | int, ...]] = [(*config.path, key)]
    else:
        templates = config.template_list(key) or []
        paths = [(*config.path, key, i) for i in range(len(templates))]
    if not templates:
        config.fail(key, f"{key} needs at least one certificate authority")
    for template, path in zip(templates, paths, strict=True):
        if template.is_constant:
            problem = check_cas(constant(template))
            if problem is not None:
                raise InvalidConfig(problem, config.locate(path))
    return templates


@lru_cache(maxsize=64)
def check_cas(bundle: str) -> str | None:
    """Why a `mutual_tls_certificate_authorities` entry cannot be used, or None."""
    text = bundle.strip()
    if text.startswith("ca_"):
        return (
            f"{text!r} names a certificate authority of the hosted service; edgeward has no "
            "such registry: give the CA certificate's PEM (or ${secrets.get(...)})"
        )
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return "not a PEM certificate authority (-----BEGIN CERTIFICATE----- ... base64)"
    return None


@lru_cache(maxsize=64)
def check_pair(certificate: str, private_key: str) -> tuple[str, str] | None:
    """Why a server certificate and key cannot be used together, or None:
    ("certificate" or "key", the reason)."""
    try:
        chain = x509.load_pem_x509_certificates(certificate.strip().encode())
    except ValueError:
        return "certificate", "server_certificate is not a PEM certificate chain"
    try:
        key = serialization.load_pem_private_key(private_key.strip().encode(), password=None)
    except (ValueError, TypeError):
        return "key", "server_private_key is not an unencrypted PEM private key"
    public = (
        chain[0]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != mine:
        return "key", "server_private_key does not belong to server_certificate (its first)"
    return None


def unsatisfied(settings: TerminateTls, info: TlsInfo) -> str | None:
    """Why a handshake the listener made does not satisfy `settings`, or None."""
    allowed = {
        _STDLIB_VERSION[v] for v in VERSIONS if settings.min_version <= v <= settings.max_version
    }
    if info.version not in allowed:
        return f"{info.version} is outside {settings.min_version}..{settings.max_version}"
    if settings.certificate is not None:
        return "the listener presented its own certificate, not server_certificate"
    if not settings.client_cas:
        return None
    cert = info.client_cert
    if cert is None:
        if settings.client_verify == "request":
            return None
        return "no client certificate (mutual TLS is required)"
    issued = x509.load_der_x509_certificate(cert.der)
    for bundle in settings.client_cas:
        for ca in x509.load_pem_x509_certificates(bundle.strip().encode()):
            try:
                issued.verify_directly_issued_by(ca)
            except (InvalidSignature, ValueError, TypeError):
                continue
            return None
    return "the client certificate was not issued by mutual_tls_certificate_authorities"
