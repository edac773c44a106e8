from __future__ import annotations

from .helpers import load, load_error, one, request


def test_deny_answers_403_without_body_and_never_forwards() -> None:
    h = load(
        """
        on_http_request:
          - name: block admin
            expressions: ["req.url.path.startsWith('/admin')"]
            actions: [{type: deny}]
        """
    )
    denied = request(h, "/admin/users")
    assert denied.status == 403 and denied.body == b"" and denied.forwarded is None
    assert request(h, "/public").forwarded is not None
    (event,) = h.events
    assert (event.rule, event.action, event.verdict, event.status) == (
        "block admin",
        "deny",
        "deny",
        403,
    )
    assert event.client_ip == "192.0.2.10" and event.request_id == "req-1"


def test_deny_status_code() -> None:
    h = load(one("deny", "status_code: 404"))
    assert request(h).status == 404


def test_deny_ends_the_phase() -> None:
    h = load(
        """
        on_http_request:
          - actions: [{type: deny}]
          - actions: [{type: add-headers, config: {headers: {x-after: "1"}}}]
        """
    )
    assert request(h).status == 403
    assert len(h.events) == 1


def test_deny_on_tcp_connect_closes() -> None:
    h = load(one("deny", phase="on_tcp_connect"))
    assert request(h).tcp_closed


def test_deny_rejects_bad_status_and_unknown_fields() -> None:
    err = load_error(one("deny", "status_code: 99"))
    assert "at least 100" in str(err)
    err = load_error(one("deny", "status: 404"))
    assert "unknown field 'status'" in str(err)
    err = load_error(one("deny", "status_code: '4x'"))
    assert "must be an integer" in str(err)


def test_deny_is_not_allowed_in_response_phase() -> None:
    err = load_error(one("deny", phase="on_http_response"))
    assert "cannot run in on_http_response" in str(err)
