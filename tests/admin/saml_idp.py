"""A real SAML 2.0 Identity Provider on loopback for the SSO tests:
pysaml2's IdP (`saml2.server.Server`, signing with xmlsec1) behind a small
WSGI server in a thread of the test process. It answers the SP's
HTTP-Redirect AuthnRequest with an HTML form that posts a signed response
to the SP's ACS (as an IdP does; the test's browser submits the form).

`IdP.behaviour` says who signs in and how, and what to get wrong on
purpose (another audience or recipient, no signature, an expired
assertion, a tampered one) for the refusal tests."""

from __future__ import annotations

import contextlib
import datetime
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs

from tests.proxy.proxy_support import free_port

XMLSEC = "/usr/bin/xmlsec1"
MFA = "https://refeds.org/profile/mfa"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Behaviour:
    email: str = "carol@example.com"
    context: str = MFA
    sign: bool = True
    audience: str | None = None  # another SP entity id
    destination: str | None = None  # another ACS URL
    lifetime_minutes: int = 5  # negative: already expired
    tamper: bool = False  # change the email after signing
    answered: list[str] = field(default_factory=list)  # request ids seen


class _Server(ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class IdP:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.cert, self.key = self_signed(directory, "idp")
        self.behaviour = Behaviour()
        self.server: Any = None
        self.metadata_file = directory / "idp-metadata.xml"
        self.metadata_file.write_text(self._metadata())

    @property
    def entity_id(self) -> str:
        return f"http://127.0.0.1:{self.port}/idp"

    def _config(self, sp_metadata: Path | None, lifetime: int = 5) -> Any:
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS

        conf: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"http://127.0.0.1:{self.port}/sso/redirect", BINDING_HTTP_REDIRECT)
                        ]
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_URI,
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": str(self.key),
            "cert_file": str(self.cert),
            "metadata": {"local": [str(sp_metadata)]} if sp_metadata else {},
        }
        config = IdPConfig()
        config.load(conf)
        return config

    def _metadata(self) -> str:
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self._config(None)))

    def trust_sp(self, sp_metadata: bytes) -> None:
        """Load the SP's metadata (from its /saml/metadata)."""
        path = self.directory / "sp-metadata.xml"
        path.write_bytes(sp_metadata)
        self.sp_metadata = path

    def _server(self) -> Any:
        from saml2.server import Server

        return Server(config=self._config(self.sp_metadata, self.behaviour.lifetime_minutes))

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID

        if environ["PATH_INFO"] != "/sso/redirect":
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"not found"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        server = self._server()
        request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        message = request.message
        b = self.behaviour
        b.answered.append(message.id)
        acs = message.assertion_consumer_service_url
        response = server.create_authn_response(
            identity={"mail": [b.email]},
            in_response_to=message.id,
            destination=b.destination or acs,
            sp_entity_id=b.audience or message.issuer.text,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=b.email),
            authn={"class_ref": b.context, "authn_auth": self.entity_id},
            sign_assertion=b.sign,
            sign_response=False,
        )
        xml = str(response)
        if b.tamper:
            xml = xml.replace(b.email, "mallory@example.com")
        relay = query.get("RelayState", [""])[0]
        args = server.apply_binding(
            BINDING_HTTP_POST, xml, b.destination or acs, relay, response=True
        )
        start_response("200 OK", [("content-type", "text/html")])
        return [args["data"].encode() if isinstance(args["data"], str) else args["data"]]


@contextlib.contextmanager
def running_idp(directory: Path) -> Iterator[IdP]:
    idp = IdP(directory)
    httpd = wsgiref.simple_server.make_server(
        "127.0.0.1", idp.port, idp.app, server_class=_Server, handler_class=_Quiet
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
