from __future__ import annotations

from .helpers import load, load_error, one, request


def test_log_emits_an_event_with_interpolated_metadata() -> None:
    h = load(
        """
        on_http_request:
          - name: audit
            expressions: ["req.method == 'POST'"]
            actions:
              - type: log
                config:
                  metadata:
                    message: "post to ${req.url.path}"
                    size: "${size(req.headers)}"
                    static: true
        """
    )
    r = request(h, "/orders", method="POST", headers=[("a", "1")])
    assert r.forwarded is not None
    (event,) = h.events
    assert (event.rule, event.action, event.verdict) == ("audit", "log", "log")
    assert event.metadata == {"message": "post to /orders", "size": 1, "static": True}
    assert '"metadata":{"message":"post to /orders"' in event.to_json()
    request(h, "/orders")
    assert len(h.events) == 1


def test_log_needs_metadata() -> None:
    assert "metadata" in str(load_error(one("log")))
