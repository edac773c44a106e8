from __future__ import annotations

from .helpers import load, load_error, one, request


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
    h = load(one("close-connection", phase="on_tcp_connect"))
    assert request(h).tcp_closed


def test_close_connection_takes_no_config() -> None:
    err = load_error(one("close-connection", "x: 1", phase="on_tcp_connect"))
    assert "unknown field 'x'" in str(err)
