from __future__ import annotations

from tests.policy.helpers import load, load_error, request


def test_close_connection_in_request_phase() -> None:
    h = load(
        """
        on_http_request:
          - expressions: ["req.method == 'TRACE'"]
            actions: [{type: close-connection}]
        """
    )
    assert request(h, method="TRACE").closed
    assert not request(h).closed
    assert [e.verdict for e in h.events] == ["close"]


def test_close_connection_on_tcp_connect() -> None:
    h = load("on_tcp_connect: [{actions: [{type: close-connection}]}]")
    assert request(h).tcp_closed


def test_close_connection_takes_no_config() -> None:
    err = load_error("on_tcp_connect: [{actions: [{type: close-connection, config: {x: 1}}]}]")
    assert "unknown field 'x'" in str(err)
