"""The admin API's OpenAPI 3.1 document, served at `/openapi.json`.
tests/admin/test_openapi.py checks it against the running API: every route
is documented and every answer validates against its schema."""

from __future__ import annotations

from functools import cache
from typing import Any

S = dict[str, Any]


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict[str, S], **optional: S) -> S:
    return {
        "type": "object",
        "properties": {**required, **optional},
        "required": sorted(required),
    }


STR: S = {"type": "string"}
STR_OR_NULL: S = {"type": ["string", "null"]}
TIME: S = {"type": "string", "format": "date-time"}
TIME_OR_NULL: S = {"type": ["string", "null"], "format": "date-time"}
STRINGS: S = {"type": "array", "items": STR}
REF_OR_NULL: S = {"oneOf": [_ref("Ref"), {"type": "null"}]}

SCHEMAS: dict[str, S] = {
    "Ref": _obj({"id": STR, "uri": STR}),
    "Error": _obj(
        {
            "error_code": STR,
            "status_code": {"type": "integer"},
            "msg": STR,
            "details": _obj({"operation_id": STR}),
        }
    ),
    "Credential": _obj(
        {
            "id": STR,
            "uri": STR,
            "created_at": TIME,
            "description": STR,
            "metadata": STR,
            "token": {**STR_OR_NULL, "description": "the authtoken, only in the create response"},
            "acl": STRINGS,
            "owner_id": STR_OR_NULL,
            "revoked_at": TIME_OR_NULL,
        }
    ),
    "ApiKey": _obj(
        {
            "id": STR,
            "uri": STR,
            "created_at": TIME,
            "description": STR,
            "metadata": STR,
            "token": {**STR_OR_NULL, "description": "the key, only in the create response"},
            "owner_id": STR_OR_NULL,
            "role": {"enum": ["admin", "developer", "auditor"]},
            "acl": STRINGS,
        }
    ),
    "TunnelSession": _obj(
        {
            "id": STR,
            "uri": STR,
            "agent_version": STR,
            "credential": _ref("Ref"),
            "ip": STR,
            "metadata": STR,
            "os": STR,
            "region": STR,
            "started_at": TIME,
            "transport": STR,
            "endpoints": {"type": "array", "items": _ref("Ref")},
        }
    ),
    "Endpoint": _obj(
        {
            "id": STR,
            "uri": STR,
            "type": {"enum": ["static", "agent", "cloud"]},
            "name": STR,
            "url": STR_OR_NULL,
            "urls": STRINGS,
            "proto": STR_OR_NULL,
            "hostport": STR_OR_NULL,
            "bindings": STRINGS,
            "traffic_policy": STR,
            "metadata": STR,
            "online": {"type": "boolean"},
            "pooling_enabled": {"type": "boolean"},
            "credential": REF_OR_NULL,
            "tunnel_sessions": {"type": "array", "items": _ref("Ref")},
            "inspect": _ref("Inspect"),
        },
        description={**STR, "description": "cloud endpoints only"},
        created_at={**TIME, "description": "cloud endpoints only"},
    ),
    "WebSession": _obj(
        {
            "principal": _obj({"id": STR, "type": {"enum": ["user", "break_glass"]}, "role": STR}),
            "method": {"enum": ["oidc", "saml", "break_glass"]},
            "csrf_token": STR,
            "created_at": TIME,
            "expires_at": TIME,
        }
    ),
    "CredentialCreate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": STR,
            "metadata": STR,
            "acl": STRINGS,
            "owner_id": {
                **STR,
                "description": "admin: the API key that owns it (default: the caller's)",
            },
        },
    },
    "CredentialUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"description": STR, "metadata": STR, "acl": STRINGS},
    },
    "ApiKeyCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["role"],
        "properties": {
            "description": STR,
            "metadata": STR,
            "role": {"enum": ["admin", "developer", "auditor"]},
            "acl": {**STRINGS, "description": "a developer's grant: the rules it may give"},
        },
    },
    "ApiKeyUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"description": STR, "metadata": STR, "acl": STRINGS},
    },
    "User": _obj(
        {
            "id": STR,
            "uri": STR,
            "created_at": TIME,
            "email": STR,
            "role": {"enum": ["admin", "developer", "auditor"]},
            "acl": {**STRINGS, "description": "a developer's grant"},
            "sso_bound": {"type": "boolean", "description": "an SSO identity signed in"},
            "last_login_at": TIME_OR_NULL,
        }
    ),
    "UserUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"role": {"enum": ["admin", "developer", "auditor"]}, "acl": STRINGS},
    },
    "Invitation": _obj(
        {
            "id": STR,
            "uri": STR,
            "created_at": TIME,
            "email": STR,
            "user": _ref("Ref"),
            "created_by": STR_OR_NULL,
            "expires_at": TIME,
            "used_at": TIME_OR_NULL,
            "url": {
                **STR_OR_NULL,
                "description": "the invitation link, only in the create response",
            },
        }
    ),
    "InvitationCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "role"],
        "properties": {
            "email": STR,
            "role": {"enum": ["admin", "developer", "auditor"]},
            "acl": {**STRINGS, "description": "a developer's grant: the rules it may give"},
        },
    },
}

# Event destinations and subscriptions (admin/events_api.py, edgeward.events.spec).
_TLS: S = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {"ca": STR_OR_NULL, "server_name": STR_OR_NULL},
}
_TARGET: S = {
    "type": "object",
    "description": "exactly one kind: file, syslog or http",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {"path": {**STR, "description": "stdout, stderr or an absolute path"}},
        },
        "syslog": {
            "type": "object",
            "additionalProperties": False,
            "required": ["address"],
            "properties": {
                "address": {**STR, "description": "host:port (RFC 5424, octet counting)"},
                "tls": _TLS,
                "app_name": STR,
                "facility": STR,
            },
        },
        "http": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": STR,
                "shape": {"enum": ["hec", "json"]},
                "token": {**STR_OR_NULL, "description": "shown back as ********"},
                "ca": STR_OR_NULL,
            },
        },
    },
}
_FORMAT: S = {"enum": ["json", "ocsf"]}
_SOURCES: S = {
    "type": "array",
    "items": _obj({"type": {**STR, "description": "an event type or a glob"}}),
}
_FILTER: S = {**STR, "description": "a CEL expression over the event envelope"}
SCHEMAS.update(
    {
        "EventDestination": _obj(
            {
                "id": STR,
                "uri": STR,
                "created_at": TIME,
                "description": STR,
                "metadata": STR,
                "format": _FORMAT,
                "target": _TARGET,
            }
        ),
        "EventSubscription": _obj(
            {
                "id": STR,
                "uri": STR,
                "created_at": TIME,
                "description": STR,
                "metadata": STR,
                "sources": _SOURCES,
                "destinations": {"type": "array", "items": _ref("Ref")},
                "filter": STR,
            }
        ),
        "EventDestinationCreate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["target"],
            "properties": {
                "description": STR,
                "metadata": STR,
                "format": _FORMAT,
                "target": _TARGET,
            },
        },
        "EventDestinationUpdate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "description": STR,
                "metadata": STR,
                "format": _FORMAT,
                "target": _TARGET,
            },
        },
        "EventSubscriptionCreate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "description": STR,
                "metadata": STR,
                "sources": _SOURCES,
                "destination_ids": STRINGS,
                "filter": _FILTER,
            },
        },
    }
)
SCHEMAS["EventSubscriptionUpdate"] = SCHEMAS["EventSubscriptionCreate"]
_DESCRIBED: dict[str, S] = {
    "id": STR,
    "uri": STR,
    "created_at": TIME,
    "description": STR,
    "metadata": STR,
}
_DESCRIBE: dict[str, S] = {"description": STR, "metadata": STR}


INT: S = {"type": "integer"}
NUMBER: S = {"type": "number"}
HEADERS: S = {
    "type": "array",
    "items": {"type": "array", "items": STR, "minItems": 2, "maxItems": 2},
    "description": "[name, value] pairs, in order; credentials redacted",
}
_INSPECT: dict[str, S] = {
    "enabled": {"type": "boolean"},
    "max_requests": {**INT, "minimum": 1, "maximum": 500},
    "max_body_bytes": {**INT, "minimum": 0, "maximum": 1048576},
}
_BODY: dict[str, S] = {
    "body": {**STR, "description": "the first max_body_bytes, redacted"},
    "body_encoding": {"enum": ["utf-8", "base64"]},
    "body_size": INT,
    "body_truncated": {"type": "boolean"},
}


def _input(required: dict[str, S], **optional: S) -> S:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(required),
        "properties": {**required, **optional},
    }


SCHEMAS.update(
    {
        "IpPolicy": _obj(_DESCRIBED),
        "IpPolicyCreate": _input({}, **_DESCRIBE),
        "IpPolicyUpdate": _input({}, **_DESCRIBE),
        "IpPolicyRule": _obj(
            {
                **_DESCRIBED,
                "cidr": STR,
                "ip_policy": _ref("Ref"),
                "action": {"enum": ["allow", "deny"]},
            }
        ),
        "IpPolicyRuleCreate": _input(
            {"cidr": STR, "ip_policy_id": STR, "action": {"enum": ["allow", "deny"]}},
            **_DESCRIBE,
        ),
        "IpPolicyRuleUpdate": _input({}, cidr=STR, **_DESCRIBE),
        "IpRestriction": _obj(
            {
                **_DESCRIBED,
                "enforced": {"type": "boolean"},
                "type": {"enum": ["dashboard", "api", "agent", "endpoints"]},
                "ip_policies": {"type": "array", "items": _ref("Ref")},
            }
        ),
        "IpRestrictionCreate": _input(
            {
                "type": {"enum": ["dashboard", "api", "agent", "endpoints"]},
                "ip_policy_ids": {**STRINGS, "minItems": 1},
            },
            enforced={"type": "boolean"},
            **_DESCRIBE,
        ),
        "IpRestrictionUpdate": _input(
            {},
            enforced={"type": "boolean"},
            ip_policy_ids={**STRINGS, "minItems": 1},
            **_DESCRIBE,
        ),
        "EndpointCreate": _input(
            {"url": STR, "traffic_policy": STR},
            type={"enum": ["cloud"]},
            bindings={**STRINGS, "description": '["public"]'},
            **_DESCRIBE,
        ),
        "EndpointUpdate": _input(
            {},
            url=STR,
            traffic_policy=STR,
            inspect={
                **_input({}, **_INSPECT),
                "description": "the traffic inspector: any endpoint, by its owner or an admin",
            },
            **_DESCRIBE,
        ),
        "Inspect": _obj(_INSPECT),
        "Capture": _obj(
            {
                "id": STR,
                "uri": STR,
                "endpoint_id": STR,
                "start": TIME,
                "duration_ms": NUMBER,
                "remote_addr": STR,
                "outcome": {"enum": ["completed", "aborted", "closed", "upgraded"]},
                "replay_of": {**STR_OR_NULL, "description": "the capture this one replays"},
                "request": _obj(
                    {
                        "method": STR,
                        "uri": STR,
                        "host": STR,
                        "scheme": STR,
                        "proto": STR,
                        "headers": HEADERS,
                        **_BODY,
                    }
                ),
                "response": {
                    "oneOf": [
                        _obj({"status_code": INT, "headers": HEADERS, **_BODY}),
                        {"type": "null"},
                    ]
                },
                "trace": {"type": "array", "items": _ref("TraceStep")},
                "decision": {"oneOf": [_ref("TraceStep"), {"type": "null"}]},
            }
        ),
        "TraceStep": _obj(
            {
                "phase": STR,
                "rule": STR,
                "action": {**STR_OR_NULL, "description": "null: the rule's expressions"},
                "outcome": STR,
            }
        ),
        "AgentIngress": _obj(
            {
                "id": STR,
                "uri": STR,
                "description": STR,
                "metadata": STR,
                "domain": STR,
                "ns_targets": STRINGS,
                "region_domains": STRINGS,
                "created_at": TIME_OR_NULL,
                "certificate_management_policy": {"type": "null"},
                "certificate_management_status": {"type": "null"},
                "domains": STRINGS,
                "listeners": STRINGS,
            }
        ),
        "Vault": _obj({**_DESCRIBED, "name": STR}),
        "VaultCreate": _input({"name": STR}, **_DESCRIBE),
        "VaultUpdate": _input({}, **_DESCRIBE),
        "Secret": _obj(
            {**_DESCRIBED, "updated_at": TIME, "name": STR, "vault": _ref("Ref")},
        ),
        "SecretCreate": _input(
            {"name": STR, "value": {**STR, "writeOnly": True}, "vault_id": STR}, **_DESCRIBE
        ),
        "SecretUpdate": _input({}, value={**STR, "writeOnly": True}, **_DESCRIBE),
    }
)
_LISTS = {
    "Credential": "credentials",
    "ApiKey": "api_keys",
    "TunnelSession": "tunnel_sessions",
    "Endpoint": "endpoints",
    "IpPolicy": "ip_policies",
    "IpPolicyRule": "ip_policy_rules",
    "IpRestriction": "ip_restrictions",
    "AgentIngress": "agent_ingresses",
    "Vault": "vaults",
    "Secret": "secrets",
    "EventDestination": "event_destinations",
    "EventSubscription": "event_subscriptions",
    "User": "users",
    "Invitation": "invitations",
    "Capture": "captures",
}
for _item, _key in _LISTS.items():
    _name = f"{_item}List"
    SCHEMAS[_name] = _obj(
        {
            _key: {"type": "array", "items": _ref(_item)},
            "uri": STR,
            "next_page_uri": STR_OR_NULL,
        }
    )

_ERRORS = {
    code: {"description": why, "content": {"application/json": {"schema": _ref("Error")}}}
    for code, why in (
        ("400", "an invalid request (or no Ngrok-Version: 2)"),
        ("413", "a request body over 64 KiB"),
        ("401", "no or an invalid API key"),
        ("403", "the key's role may not do this, or an ACL beyond its grant"),
        ("404", "no such resource (or not the developer's own)"),
        ("409", "a name, URL or type already taken, a resource in use, or a lockout (force)"),
        ("412", "If-Match does not match the resource's ETag"),
        ("503", "the state store cannot be read or written"),
    )
}
_ID = {"name": "id", "in": "path", "required": True, "schema": STR}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": STR}
_PAGING = [
    {"name": "limit", "in": "query", "required": False, "schema": STR},
    {"name": "before_id", "in": "query", "required": False, "schema": STR},
]


def _json_ok(status: str, schema: str, why: str) -> S:
    return {status: {"description": why, "content": {"application/json": {"schema": _ref(schema)}}}}


def _op(op_id: str, summary: str, responses: S, **extra: Any) -> S:
    return {
        "operationId": op_id,
        "summary": summary,
        "responses": {**responses, **_ERRORS},
        **extra,
    }


def _body(schema: str) -> S:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_NO_CONTENT = {"204": {"description": "done"}}


def _html(op_id: str, summary: str, *statuses: str) -> S:
    """A page of the web sign-in (no API key; HTML, or a redirect)."""
    why = {
        "200": "a page",
        "201": "made: the page shows the secret once",
        "302": "to the identity provider",
        "303": "signed in (to /console) or out",
        "400": "an expired or replayed login",
        "401": "refused credentials or assertion",
        "403": "no account, no MFA, a stale form, or an address the dashboard restriction denies",
        "409": "refused: the lockout guard, a policy in use, a URL already served, a capture"
        " that cannot be replayed",
        "412": "changed meanwhile: reload the page",
        "404": "SSO is not configured",
        "413": "a form too large",
        "415": "not a form",
        "429": "too many sign-in attempts from this address",
        "502": "the identity provider failed",
        "503": "the identity provider or the store cannot be reached",
    }
    html = {"text/html": {"schema": STR}}
    responses: S = {}
    for status in statuses:
        answer: S = {"description": why[status]}
        if status not in ("302", "303"):
            answer["content"] = html
        responses[status] = answer
    return {"operationId": op_id, "summary": summary, "security": [], "responses": responses}


_FAILS = ("400", "401", "403", "404", "429", "502", "503")
_FORM_FAILS = ("400", "401", "403", "404", "413", "415", "429", "503")


def _web() -> dict[str, S]:
    token = {"name": "token", "in": "path", "required": True, "schema": STR}
    return {
        "/login": {"get": _html("login_page", "the sign-in page", "200", "403", "404")},
        "/login/oidc": {
            "get": _html("login_oidc", "start an OpenID Connect login", "302", *_FAILS)
        },
        "/login/oidc/callback": {
            "get": _html("login_oidc_callback", "the OpenID Provider's callback", "303", *_FAILS)
        },
        "/login/saml": {"get": _html("login_saml", "start a SAML login", "302", *_FAILS)},
        "/login/saml/acs": {
            "post": _html(
                "login_saml_acs", "the SAML assertion consumer service", "303", *_FORM_FAILS
            )
        },
        "/saml/metadata": {
            "get": {
                "operationId": "saml_metadata",
                "summary": "our SAML SP metadata",
                "security": [],
                "responses": {
                    "200": {
                        "description": "metadata",
                        "content": {"application/samlmetadata+xml": {"schema": STR}},
                    },
                    "403": {"description": "an address the dashboard restriction denies"},
                    "404": {"description": "SAML is not configured"},
                },
            }
        },
        "/login/break-glass": {
            "post": _html("login_break_glass", "the break-glass admin's login", "303", *_FORM_FAILS)
        },
        "/invite/{token}": {
            "parameters": [token],
            "get": _html(
                "invitation_open", "an invitation link", "200", "400", "403", "404", "503"
            ),
        },
        "/logout": {"post": _html("logout", "end the web session", "200", "303", "403", "404")},
        "/console": {
            "get": _html("console", "the console (signed in)", "200", "303", "403", "404")
        },
        **_console(),
        "/session": {
            "get": {
                "operationId": "session",
                "summary": "the web session and its CSRF token (for X-CSRF-Token)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the session",
                        "content": {"application/json": {"schema": _ref("WebSession")}},
                    },
                    "401": _ERRORS["401"],
                    "403": {"description": "an address the dashboard restriction denies"},
                    "404": {"description": "SSO is not configured"},
                },
            }
        },
    }


def _console() -> dict[str, S]:
    """The web console's pages (`admin.console`): HTML for the signed-in
    session; a form post answers with the page (the API's status when it
    refused) or 403 without the session's CSRF token."""
    id = {"name": "id", "in": "path", "required": True, "schema": STR}
    capture = {"name": "capture_id", "in": "path", "required": True, "schema": STR}
    read = ("200", "303", "403", "404", "503")
    write = ("200", "303", "400", "403", "404", "413", "503")
    css = {"text/css": {"schema": STR}}
    return {
        "/console/static/console.css": {
            "get": {
                "operationId": "console_stylesheet",
                "summary": "the console's stylesheet",
                "security": [],
                "responses": {
                    "200": {"description": "the stylesheet", "content": css},
                    "403": {"description": "an address the dashboard restriction denies"},
                },
            }
        },
        "/console/endpoints": {
            "get": _html("console_endpoints", "endpoints", *read),
            "post": _html("console_endpoint_create", "make a cloud endpoint", "201", "409", *write),
        },
        "/console/endpoints/{id}/update": {
            "parameters": [id],
            "post": _html(
                "console_endpoint_update", "change a cloud endpoint's policy", "409", "412", *write
            ),
        },
        "/console/endpoints/{id}/delete": {
            "parameters": [id],
            "post": _html("console_endpoint_delete", "delete a cloud endpoint", *write),
        },
        "/console/sessions": {"get": _html("console_sessions", "agent sessions", *read)},
        "/console/sessions/{id}/stop": {
            "parameters": [id],
            "post": _html("console_session_stop", "stop an agent session", *write),
        },
        "/console/authtokens": {
            "get": _html("console_authtokens", "authtokens", *read),
            "post": _html("console_authtoken_create", "make an authtoken", "201", *write),
        },
        "/console/authtokens/{id}/revoke": {
            "parameters": [id],
            "post": _html("console_authtoken_revoke", "revoke an authtoken", *write),
        },
        "/console/users": {"get": _html("console_users", "users and invitations", *read)},
        "/console/invitations": {"post": _html("console_invite", "invite someone", "201", *write)},
        "/console/invitations/{id}/revoke": {
            "parameters": [id],
            "post": _html("console_invitation_revoke", "revoke an invitation", *write),
        },
        "/console/audit": {"get": _html("console_audit", "recent audit events", "400", *read)},
        "/console/endpoints/{id}/inspect": {
            "parameters": [id],
            "get": _html("console_inspector", "the traffic inspector of an endpoint", *read),
            "post": _html("console_inspector_toggle", "turn inspection on or off", *write),
        },
        "/console/endpoints/{id}/captures/clear": {
            "parameters": [id],
            "post": _html("console_captures_clear", "drop an endpoint's captures", *write),
        },
        "/console/endpoints/{id}/captures/{capture_id}": {
            "parameters": [id, capture],
            "get": _html("console_capture", "one capture: heads, bodies, trace", *read),
        },
        "/console/endpoints/{id}/captures/{capture_id}/replay": {
            "parameters": [id, capture],
            "post": _html("console_capture_replay", "replay a capture", "201", "409", *write),
        },
        "/console/policy": {
            "get": _html("console_policy", "the policy editor", *read),
            "post": _html("console_policy_run", "policy check or test on text", *write),
        },
        **_console_ip(id, read, write),
        **_console_events(id, read, write),
    }


def _console_ip(id: S, read: tuple[str, ...], write: tuple[str, ...]) -> dict[str, S]:
    """The IP policies page (`admin.console.ip_pages`): the API's refusals
    keep their status (409: the lockout guard or a policy in use)."""
    change = (*write, "409", "412")
    return {
        "/console/ip-policies": {
            "get": _html("console_ip_policies", "IP policies and restrictions", *read),
            "post": _html("console_ip_policy_create", "make an IP policy", "201", *write),
        },
        "/console/ip-policies/{id}/rules": {
            "parameters": [id],
            "post": _html("console_ip_policy_rule_create", "add a rule", "201", *change),
        },
        "/console/ip-policies/{id}/delete": {
            "parameters": [id],
            "post": _html("console_ip_policy_delete", "delete an IP policy", *change),
        },
        "/console/ip-policy-rules/{id}/delete": {
            "parameters": [id],
            "post": _html("console_ip_policy_rule_delete", "delete a rule", *change),
        },
        "/console/ip-restrictions": {
            "post": _html(
                "console_ip_restriction_attach",
                "attach an IP policy to the restriction of a type (made if none)",
                "201",
                *change,
            )
        },
        "/console/ip-restrictions/{id}/detach": {
            "parameters": [id],
            "post": _html("console_ip_restriction_detach", "detach an IP policy", *change),
        },
        "/console/ip-restrictions/{id}/delete": {
            "parameters": [id],
            "post": _html("console_ip_restriction_delete", "delete an IP restriction", *change),
        },
    }


def _console_events(id: S, read: tuple[str, ...], write: tuple[str, ...]) -> dict[str, S]:
    """The event destinations page (`admin.console.event_pages`)."""
    return {
        "/console/event-destinations": {
            "get": _html("console_event_destinations", "event destinations, subscriptions", *read),
            "post": _html("console_event_destination_create", "make a destination", "201", *write),
        },
        "/console/event-destinations/{id}/delete": {
            "parameters": [id],
            "post": _html("console_event_destination_delete", "delete a destination", *write),
        },
        "/console/event-subscriptions": {
            "post": _html(
                "console_event_subscription_create", "make a subscription", "201", *write
            ),
        },
        "/console/event-subscriptions/{id}/delete": {
            "parameters": [id],
            "post": _html("console_event_subscription_delete", "delete a subscription", *write),
        },
    }


_FORCE = {"name": "force", "in": "query", "required": False, "schema": {"enum": ["true", "false"]}}


def _crud(
    collection: str,
    item: str,
    name: str,
    *,
    writable: bool,
    secret: bool = False,
    forced: bool = False,
) -> dict[str, S]:
    lst = f"{item}List"
    paths: dict[str, S] = {
        f"/{collection}": {
            "get": _op(
                f"{collection}_list",
                f"list {name}s, newest first",
                _json_ok("200", lst, "a page"),
                parameters=_PAGING,
            )
        },
        f"/{collection}/{{id}}": {
            "parameters": [_ID],
            "get": _op(f"{collection}_get", f"one {name}", _json_ok("200", item, "it")),
        },
    }
    if writable:
        paths[f"/{collection}"]["post"] = _op(
            f"{collection}_create",
            f"create a {name}" + (" (its token is shown only here)" if secret else ""),
            _json_ok("201", item, "created"),
            requestBody=_body(f"{item}Create"),
            **({"parameters": [_FORCE]} if forced else {}),
        )
        paths[f"/{collection}/{{id}}"]["patch"] = _op(
            f"{collection}_update",
            f"change a {name}",
            _json_ok("200", item, "changed"),
            parameters=[_IF_MATCH, *([_FORCE] if forced else [])],
            requestBody=_body(f"{item}Update"),
        )
        paths[f"/{collection}/{{id}}"]["delete"] = _op(
            f"{collection}_delete",
            f"delete a {name}",
            _NO_CONTENT,
            parameters=[_IF_MATCH, *([_FORCE] if forced else [])],
        )
    return paths


def _captures() -> dict[str, S]:
    """The traffic inspector's captures of an endpoint (`admin.inspector_api`)."""
    capture = {"name": "capture_id", "in": "path", "required": True, "schema": STR}
    return {
        "/endpoints/{id}/captures": {
            "parameters": [_ID],
            "get": _op(
                "endpoints_captures_list",
                "the endpoint's captured requests on this edge, newest first",
                _json_ok("200", "CaptureList", "a page"),
                parameters=_PAGING,
            ),
            "delete": _op("endpoints_captures_clear", "drop the captures", _NO_CONTENT),
        },
        "/endpoints/{id}/captures/{capture_id}": {
            "parameters": [_ID, capture],
            "get": _op("endpoints_captures_get", "one capture", _json_ok("200", "Capture", "it")),
        },
        "/endpoints/{id}/captures/{capture_id}/replay": {
            "parameters": [_ID, capture],
            "post": _op(
                "endpoints_captures_replay",
                "send the captured request again through the endpoint (as captured: redacted"
                " values stay redacted); 409 when it cannot be replayed",
                _json_ok("201", "Capture", "the replay's own capture"),
            ),
        },
    }


@cache
def document() -> S:
    paths: dict[str, S] = {
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "this document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        **_crud("credentials", "Credential", "credential (authtoken)", writable=True, secret=True),
        **_crud("api_keys", "ApiKey", "API key", writable=True, secret=True),
        **_crud("tunnel_sessions", "TunnelSession", "tunnel session", writable=False),
        **_crud(
            "event_destinations",
            "EventDestination",
            "event destination",
            writable=True,
        ),
        **_crud(
            "event_subscriptions",
            "EventSubscription",
            "event subscription",
            writable=True,
        ),
        **_crud("endpoints", "Endpoint", "endpoint (cloud ones are written)", writable=True),
        **_crud("ip_policies", "IpPolicy", "IP policy", writable=True, forced=True),
        **_crud("ip_policy_rules", "IpPolicyRule", "IP policy rule", writable=True, forced=True),
        **_crud("ip_restrictions", "IpRestriction", "IP restriction", writable=True, forced=True),
        **_crud("agent_ingresses", "AgentIngress", "agent ingress", writable=False),
        **_crud("vaults", "Vault", "vault", writable=True),
        **_crud("secrets", "Secret", "secret (its value is never shown)", writable=True),
        "/vaults/{id}/secrets": {
            "parameters": [_ID],
            "get": _op(
                "vaults_secrets",
                "the secrets of a vault (names, never values)",
                _json_ok("200", "SecretList", "a page"),
                parameters=_PAGING,
            ),
        },
        **_crud("users", "User", "user", writable=True),
        **_crud("invitations", "Invitation", "invitation", writable=True),
        **_web(),
        **_captures(),
        "/tunnel_sessions/{id}/stop": {
            "parameters": [_ID],
            "post": _op(
                "tunnel_sessions_stop",
                "stop an agent session: its endpoints go at once",
                _NO_CONTENT,
            ),
        },
    }
    del paths["/invitations/{id}"]["patch"]  # an invitation is made again, not changed
    del paths["/users"]["post"]  # users are made by invitations
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edgeward admin API",
            "version": "2",
            "description": "Shaped like the public ngrok API (docs/control-plane.md).",
        },
        "servers": [{"url": "/"}],
        "security": [{"api_key": []}, {"session": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "api_key": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-edgeward-session",
                    "description": "a web session (SSO); writes also send X-CSRF-Token",
                },
            },
        },
        "paths": paths,
    }


__all__ = ["document"]
