"""The Traffic Policy environment, as data shared by both CEL twins and the
policy engine: the variables (in the `Env(variables=...)` syntax) and the
gateway functions (name, style, parameter types, result type).

Sources: traffic-policy-reference.md §2.3-2.7 (variables and macros) and §3
(the result variables of each action). docs/cel.md §11.4 and §12 give the
semantics. A name that is not declared here is a compile error in a policy.
"""

from __future__ import annotations

from typing import Any, Final

from edgeward.expr.env import Env

# --- variables ------------------------------------------------------------------------

_ERROR: Final = {"code": "string", "message": "string"}
_DN: Final = {  # a distinguished name: the RFC 4514 string and its parts
    "": "string",
    "common_name": "string",
    "country": "list(string)",
    "locality": "list(string)",
    "organization": "list(string)",
    "organizational_unit": "list(string)",
    "postal_code": "list(string)",
    "province": "list(string)",
    "street_address": "list(string)",
}
_CERTIFICATE: Final = {
    "extensions": "list(map(string, dyn))",
    "issuer": _DN,
    "subject": _DN,
    "san": {
        "": "string",
        "dns_names": "list(string)",
        "email_addresses": "list(string)",
        "ip_addresses": "list(string)",
        "uris": "list(string)",
    },
    "serial_number": "string",
    "signature_algorithm": "string",
    "validity": {"not_after": "timestamp", "not_before": "timestamp"},
    "pem": "string",
}
_TLS: Final = {
    "cipher_suite": "string",
    "ja4_fingerprint": "string",
    "negotiated_alpn": "string",
    "session_resumed": "bool",
    "sni": "string",
    "version": "string",
    "client": _CERTIFICATE,
    "server": _CERTIFICATE,
}
_LOCATION: Final = {
    "city": "string",
    "continent": "string",
    "country": "string",
    "country_code": "string",
    "is_eu": "bool",
    "latitude": "string",
    "longitude": "string",
    "metro_code": "string",
    "postal_code": "string",
    "radius": "string",
    "subdivision": "string",
    "timezone": "string",
}
_IP_INTEL: Final = {  # an IP address (the string) with what is known about it
    "": "string",
    "categories": "list(string)",
    "is_on_blocklist": "bool",
    "is_tor_node": "bool",
    "as": {"number": "int", "organization": "string"},
    "geo": {"location": _LOCATION, "registered_location": _LOCATION},
}
_CONTENT_TYPE: Final = {"": "string", "parameters": "map(string, string)", "raw": "string"}
_HEADERS: Final = "map(string, list(string))"
_COOKIES: Final = "map(string, list(map(string, dyn)))"
_TLS_RESULT: Final = {**_TLS, "warnings": "list(string)", "error": _ERROR}
_IDENTITY: Final = {
    "id": "string",
    "email": "string",
    "name": "string",
    "provider_user_id": "string",
    "current_provider_session_id": "string",
    "current_session_id": "string",
    # edgeward's extension: every claim of the ID token and userinfo (or the
    # oauth provider's user API), e.g. groups, amr, acr (docs/identity.md).
    "claims": "map(string, dyn)",
}
_SESSION: Final = {
    "identity": _IDENTITY,
    "identity_token": "string",
    "access_token": "string",
    "refresh_token": "string",
    "expires_at": "timestamp",
    "session_timed_out": "bool",
    "session_max_duration_reached": "bool",
    "userinfo_refreshed": "bool",
    "user_info_refreshed": "bool",
    "error": _ERROR,
}
_OWASP: Final = {
    "decision": "string",
    "anomaly_score": "int",
    "anomaly_score_threshold": "int",
    "matched_rules": "list(map(string, dyn))",
    "error": _ERROR,
}
_FIND_REPLACE: Final = {"replacements": "list(map(string, dyn))", "error": _ERROR}

VARIABLES: Final[dict[str, Any]] = {
    "conn": {
        "bytes_in": "int",
        "bytes_out": "int",
        "client_ip": _IP_INTEL,
        "client_port": "int",
        "server_ip": _IP_INTEL,
        "server_port": "int",
        "server_region": "string",
        "ts": {"start": "timestamp", "end": "timestamp"},
        "geo": {
            "city": "string",
            "country": "string",
            "country_code": "string",
            "latitude": "string",
            "longitude": "string",
            "radius": "string",
            "subdivision": "string",
        },
        "tls": _TLS,
        "k8s": {
            "pod": {
                "id": "string",
                "metadata": {
                    "name": "string",
                    "namespace": "string",
                    "annotations": "map(string, string)",
                    "error_code": "string",
                    "error_message": "string",
                },
            }
        },
    },
    "req": {
        "content_encoding": "list(string)",
        "content_length": "int",
        "content_type": _CONTENT_TYPE,
        "cookies": _COOKIES,
        "headers": _HEADERS,
        "host": "string",
        "location": "string",
        "method": "string",
        "trailers": _HEADERS,
        "ts": {"body_received": "timestamp", "header_received": "timestamp"},
        "url": {
            "": "string",
            "authority": "string",
            "host": "string",
            "path": "string",
            "port": "int",
            "query": "string",
            "query_params": _HEADERS,
            "raw": "string",
            "raw_path": "string",
            "scheme": "string",
            "uri": "string",
            "user_password": "string",
        },
        "user_agent": {
            "": "string",
            "name": "string",
            "version": "string",
            "os": "string",
            "os_version": "string",
            "device": "string",
            "is_mobile": "bool",
            "is_tablet": "bool",
            "is_desktop": "bool",
            "is_bot": "bool",
            "url": "string",
        },
        "version": "string",
    },
    "res": {
        "content_encoding": "list(string)",
        "content_length": "int",
        "content_type": _CONTENT_TYPE,
        "cookies": _COOKIES,
        "headers": _HEADERS,
        "location": "string",
        "status_code": "int",
        "trailers": _HEADERS,
    },
    "endpoint": {
        "addr": "string",
        "host": "string",
        "id": "string",
        "name": "string",
        "port": "int",
        "protocol": "string",
        "scheme": "string",
        "url": "string",
        "metadata": "map(string, string)",
    },
    "time": {"now": "string"},
    "vars": "map(string, dyn)",
    # edgeward's extension: the message being processed in the
    # on_event_stream_message phase (its fields; `retry` the last one given).
    "sse": {"data": "string", "event": "string", "id": "string", "retry": "string"},
    "actions": {
        "ngrok": {
            "add_headers": {"headers_added": "map(string, string)"},
            "remove_headers": {"headers_removed": "list(string)"},
            "basic_auth": {
                "credentials": {"presented": "bool", "username": "string", "authorized": "bool"},
                "error": _ERROR,
            },
            "compress": {"already_compressed": "bool", "negotiated_algorithm": "string"},
            "forward_internal": {"url": "string", "error": _ERROR},
            "http_request": {
                "attempts": "list(map(string, dyn))",
                "req": {
                    "method": "string",
                    "header": _HEADERS,
                    "url": "string",
                    "body": "string",
                },
                "res": {
                    "resolved_ip": "string",
                    "header": _HEADERS,
                    "status_code": "int",
                    "time_ms": "int",
                    "body": "string",
                },
                "error": _ERROR,
            },
            "jwt_validation": {"tokens": "list(map(string, dyn))", "error": _ERROR},
            "log": {"metadata": "map(string, dyn)"},
            "oauth": _SESSION,
            "oidc": _SESSION,
            "owasp_crs_request": _OWASP,
            "owasp_crs_response": _OWASP,
            "rate_limit": {"bucket_key": "string", "limited": "bool", "error": _ERROR},
            "redirect": {"matches": "list(string)", "url": "string", "error": _ERROR},
            "url_rewrite": {"matches": "list(string)", "url": "string", "error": _ERROR},
            "request_body_find_replace": _FIND_REPLACE,
            "response_body_find_replace": _FIND_REPLACE,
            "sse_find_replace": _FIND_REPLACE,
            "restrict_ips": {"action": "string", "matched_cidr": "string", "error": _ERROR},
            "terminate_tls": _TLS_RESULT,
            "verify_webhook": {"verified": "bool", "error": _ERROR},
        }
    },
}

# The extra variables of http-request's `retry_condition`: how many attempts
# were made and what the last one gave (§3.17). A field the attempt did not
# produce is empty (status_code 0 without a response, error.code '' on
# success), so a condition never fails on a missing field.
HTTP_REQUEST_RETRY_VARIABLES: Final[dict[str, Any]] = {
    "attempts": "int",
    "last_attempt": {
        "req": {"method": "string", "url": "string", "header": _HEADERS, "body": "string"},
        "res": {
            "status_code": "int",
            "header": _HEADERS,
            "body": "string",
            "time_ms": "int",
            "resolved_ip": "string",
        },
        "error": _ERROR,
    },
}

# --- functions --------------------------------------------------------------------------

# The object `parseUrl()` / `url.parse()` return: the fields of Go's
# `net/url.URL`, in snake_case as the docs' `url.parse(...).path` writes them
# (docs/cel.md §11.4). Every field is present ('' / false when Go's is).
URL_OBJECT: Final[dict[str, Any]] = {
    "scheme": "string",
    "opaque": "string",
    "user": {"username": "string", "password": "string", "password_set": "bool"},
    "host": "string",
    "path": "string",
    "raw_path": "string",
    "omit_host": "bool",
    "force_query": "bool",
    "raw_query": "string",
    "fragment": "string",
    "raw_fragment": "string",
}

# (name, style, parameter types, result type); style "receiver" means the
# first parameter is the receiver: `s.isJson()`. The result type "URL" is
# `URL_OBJECT`.
FunctionDecl = tuple[str, str, tuple[str, ...], str]

_HASHES: Final = ("md5", "sha1", "sha256", "sha512", "crc32", "crc64", "xxhash64")

FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    ("inCidrRange", "global", ("string", "string"), "bool"),
    ("inCidrRanges", "global", ("string", "list(string)"), "bool"),
    ("base64.encode", "global", ("bytes",), "string"),
    ("base64.encode", "global", ("string",), "string"),
    ("base64.decode", "global", ("string",), "bytes"),
    ("basic_auth.encode", "global", ("string", "string"), "string"),
    ("url.escape", "global", ("string",), "string"),
    ("url.unescape", "global", ("string",), "string"),
    ("escapeUrl", "receiver", ("string",), "string"),
    ("unescapeUrl", "receiver", ("string",), "string"),
    ("json.encode", "global", ("dyn",), "string"),
    ("json.decode", "global", ("string",), "dyn"),
    ("decodeJson", "receiver", ("string",), "dyn"),
    ("encodeJson", "receiver", ("list",), "string"),
    ("encodeJson", "receiver", ("map",), "string"),
    ("isJson", "receiver", ("string",), "bool"),
    ("queryString.encode", "global", ("map",), "string"),
    ("encodeQueryString", "receiver", ("map",), "string"),
    ("queryString.decode", "global", ("string",), "map(string, list(string))"),
    ("decodeQueryString", "receiver", ("string",), "map(string, list(string))"),
    ("isQueryString", "receiver", ("string",), "bool"),
    *((f"hash.{h}", "global", ("string",), "string") for h in _HASHES),
    *((f"hash.{h}", "global", ("string", "string"), "string") for h in _HASHES),
    *((h, "receiver", ("string",), "string") for h in _HASHES),
    *((h, "receiver", ("string", "string"), "string") for h in _HASHES),
    ("isPrivateIp", "receiver", ("string",), "bool"),
    ("decodeBase64", "receiver", ("string",), "string"),
    ("encodeBase64", "receiver", ("string",), "string"),
    ("encodeBase64", "receiver", ("bytes",), "string"),
    ("isURL", "receiver", ("string",), "bool"),
    ("parseUrl", "receiver", ("string",), "URL"),
    ("url.parse", "global", ("string",), "URL"),
    # The helpers below are written with one argument fewer: the parser adds
    # the variable they read (functions.IMPLICIT_ARGUMENTS).
    ("getReqHeader", "global", (_HEADERS, "string"), "list(string)"),
    ("hasReqHeader", "global", (_HEADERS, "string"), "bool"),
    ("getQueryParam", "global", (_HEADERS, "string"), "list(string)"),
    ("hasQueryParam", "global", (_HEADERS, "string"), "bool"),
    ("getReqCookie", "global", (_COOKIES, "string"), "map(string, dyn)"),
    ("hasReqCookie", "global", (_COOKIES, "string"), "bool"),
    ("getResHeader", "global", (_HEADERS, "string"), "list(string)"),
    ("hasResHeader", "global", (_HEADERS, "string"), "bool"),
    ("getResCookie", "global", (_COOKIES, "string"), "map(string, dyn)"),
    ("hasResCookie", "global", (_COOKIES, "string"), "bool"),
    # Bound to the Env's secrets table by the checker (docs/cel.md §11.6).
    ("secrets.get", "global", ("string", "string"), "string"),
    ("rand.double", "global", (), "double"),
    ("rand.int", "global", (), "int"),
    ("rand.int", "global", ("int", "int"), "int"),
)


def policy_env(
    *, max_source_length: int = 4096, max_depth: int = 64, max_iterations: int = 10_000
) -> Env:
    """The `Env` every Traffic Policy expression and template compiles against."""
    return Env(
        VARIABLES,
        max_source_length=max_source_length,
        max_depth=max_depth,
        max_iterations=max_iterations,
    )
