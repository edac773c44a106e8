"""A real OpenID Provider on loopback for the identity tests: Canaille
(through pytest-iam's `Server`), in a thread of the test process, on
``http://127.0.0.1:PORT`` (the edge accepts that issuer only with
`identity.allow_insecure_loopback_issuer`).

Canaille 0.3.6's in-memory backend matches query filters with OR instead
of AND (one user's consent counts for another's, a code lookup can return
another code of the same client, an unredeemed code makes a new login look
like a nonce replay): `_and_filters` patches the matching to AND, so the
provider behaves like its SQL and LDAP backends. See
../shared/docs/identity-testing.md.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import uuid
import wsgiref.simple_server
from collections.abc import Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any

from tests.ports import free_port


def _and_filters() -> None:
    from canaille.backends.memory.backend import MemoryBackend

    if getattr(MemoryBackend, "_edgeward_and", False):
        return

    def do_query(self: Any, model: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if not kwargs:
            return [model(**state) for state in self.index(model).values()]
        ids: set[str] | None = None
        for attribute, values in kwargs.items():
            index = self.attribute_index(model, attribute)
            matching = {
                id for value in model.serialize(_listify(values)) for id in index.get(value, [])
            }
            ids = matching if ids is None else ids & matching
        instances = [model(**self.index(model)[id]) for id in ids or ()]
        for instance in instances:
            instance._cache = {}
        return instances

    MemoryBackend.do_query = do_query
    MemoryBackend._edgeward_and = True


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _ThreadingWSGIServer(ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Provider:
    port: int
    app: Any
    backend: Any

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def user(self, login: str, email: str, password: str, name: str) -> Any:
        from canaille.app import models

        with self.app.app_context():
            user = models.User(
                user_name=login,
                formatted_name=name,
                given_name=name.split(maxsplit=1)[0],
                family_name=name.rsplit(maxsplit=1)[-1],
                emails=[email],
                password=password,
            )
            self.backend.save(user)
            return user

    def client(self, redirect_uri: str, *, secret: str = "s3cret-client") -> tuple[str, str]:
        from canaille.app import models

        client_id = "edge-" + uuid.uuid4().hex[:12]
        with self.app.app_context():
            client = models.Client(
                client_id=client_id,
                client_secret=secret,
                client_name="edgeward test",
                client_id_issued_at=datetime.datetime.now(datetime.UTC),
                redirect_uris=[redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                scope=["openid", "profile", "email", "groups"],
                token_endpoint_auth_method="client_secret_basic",
                id_token_signed_response_alg="RS256",
                client_uri="https://edge.test",  # a TRUSTED_DOMAINS client: no consent page
            )
            self.backend.save(client)
            client.audience = [client]  # Canaille puts `aud` in ID tokens only when set
            self.backend.save(client)
        return client_id, secret


@contextlib.contextmanager
def running_provider(*, otp: bool = False) -> Iterator[Provider]:
    from canaille import create_app
    from canaille.backends import Backend
    from joserfc.jwk import JWKRegistry

    _and_filters()
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    port = free_port()
    jwk = JWKRegistry.generate_key("RSA", 2048)
    jwk.ensure_kid()
    factors = ["password", "otp"] if otp else ["password"]
    config = {
        "TESTING": True,
        "ENV_FILE": None,
        "SECRET_KEY": uuid.uuid4().hex,
        "WTF_CSRF_ENABLED": False,
        "PREFERRED_URL_SCHEME": "http",
        "SERVER_NAME": f"127.0.0.1:{port}",
        "CANAILLE": {
            "DATABASE": "memory",
            "JAVASCRIPT": False,
            "AUTHENTICATION_FACTORS": factors,
            "ACL": {"DEFAULT": {"PERMISSIONS": ["use_oidc"], "READ": ["user_name", "emails"]}},
            "LOGGING": {"version": 1, "disable_existing_loggers": False},
        },
        "CANAILLE_OIDC": {
            "ACTIVE_JWKS": [jwk.as_dict(private=True)],
            "TRUSTED_DOMAINS": ["edge.test"],
        },
    }
    app = create_app(config=config, env_file=None, env_prefix="EDGEWARD_TEST_IAM_")
    httpd = wsgiref.simple_server.make_server(
        "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with app.app_context():
            yield Provider(port, app, Backend.instance)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
