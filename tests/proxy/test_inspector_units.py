"""`proxy.inspector` without sockets: the ring's bounds, and how the
control plane's opt-ins become taps."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from edgeward.inspection import MAX_RING_BYTES, endpoint_names
from edgeward.proxy.inspector import Body, Inspector, Record, Tap
from edgeward.store.control_rows import InspectionRow

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def record(id: str, size: int = 1000) -> Record:
    return Record(
        id=id, endpoint_id="cfg_x", started_at=0.0, duration_s=0.001, client="127.0.0.1:1",
        listener="web", method=b"GET", target=b"/", authority=b"x", scheme=b"http",
        http_version=b"1.1", request_headers=[], request_body=Body(b"", 0, False), status=200,
        response_headers=[], response_body=Body(b"ok", 2, False), outcome="completed", trace=[],
        size=size,
    )  # fmt: skip


def row(id: str, enabled: bool = True, max_requests: int = 50, body: int = 100) -> InspectionRow:
    return InspectionRow(id, enabled, max_requests, body, "ak_1", NOW)


def test_the_ring_keeps_the_last_n_and_stays_under_its_byte_bound() -> None:
    tap = Tap("cfg_x", 3, 100)
    for i in range(5):
        tap.keep(record(f"cap_{i}"), None)
    assert [r.id for r in tap.records] == ["cap_2", "cap_3", "cap_4"]
    assert tap.size == 3000
    big = MAX_RING_BYTES // 2 + 1
    tap.keep(record("big_1", big), None)
    tap.keep(record("big_2", big), None)
    assert [r.id for r in tap.records] == ["big_2"] and tap.size == big
    tap.keep(record("cap_r"), b"mark")
    assert tap.replayed == {b"mark": "cap_r"} and tap.find("cap_r") is not None


def test_opt_ins_become_taps_by_data_plane_name() -> None:
    inspector = Inspector()
    inspector.configure([row("cfg_site"), row("ep_1", enabled=False), row("ep_2")], [])
    assert set(inspector.taps) == {"site", "cloud:ep_2", "agent:ep_2"}
    assert inspector.taps["cloud:ep_2"] is inspector.taps["agent:ep_2"]
    taps = inspector.taps
    tap = inspector.by_id["cfg_site"]
    tap.keep(record("cap_1"), None)
    # New bounds keep the ring (and the dict exchanges hold is the same one).
    inspector.configure([row("cfg_site", max_requests=7, body=9), row("ep_2")], [])
    assert inspector.taps is taps and inspector.by_id["cfg_site"] is tap
    assert (tap.max_requests, tap.max_body) == (7, 9)
    assert [r.id for r in inspector.captures("cfg_site")] == ["cap_1"]
    # Off: the tap and its captures go.
    inspector.configure([row("cfg_site", enabled=False)], [])
    assert inspector.taps == {} and inspector.captures("cfg_site") == []
    assert inspector.clear("cfg_site") == 0


def test_a_secret_learned_later_is_taken_out_of_the_kept_captures() -> None:
    """A capture kept before the edge learned a vault secret held it as sent;
    once the edge learns it, no capture shows it."""
    inspector = Inspector()
    inspector.configure([row("cfg_site")], ["old-secret"])
    secret = "new-secret-5f3a"
    kept = replace(
        record("cap_1"),
        target=f"/hook?note={secret}".encode(),
        request_headers=[(b"x-note", secret.encode())],
        request_body=Body(f"signed {secret}, cut".encode(), 900, True),
        trace=[{"phase": "on_http_request", "rule": secret, "action": None, "outcome": "ran"}],
    )
    inspector.by_id["cfg_site"].keep(kept, None)
    inspector.configure([row("cfg_site")], ["old-secret"])  # nothing new: kept as is
    assert inspector.captures("cfg_site")[0] is kept
    inspector.configure([row("cfg_site")], ["old-secret", secret])
    (shown,) = inspector.captures("cfg_site")
    assert secret not in json.dumps(shown.as_json())
    assert shown.request_body == Body(b"signed [REDACTED], cut", 900, True)
    assert shown.trace[0]["rule"] == "[REDACTED]" and shown.trace[0]["action"] is None


def test_endpoint_names() -> None:
    assert endpoint_names("cfg_site") == ("site",)
    assert endpoint_names("ep_9") == ("cloud:ep_9", "agent:ep_9")


def test_a_capture_as_the_api_shows_it() -> None:
    shown = record("cap_1").as_json()
    assert shown["start"] == "1970-01-01T00:00:00.000Z" and shown["duration_ms"] == 1.0
    assert shown["response"]["body"] == "ok" and shown["response"]["body_encoding"] == "utf-8"
    assert Body(b"\xff\x00", 5, True).as_json() == {
        "body": "/wA=",
        "body_encoding": "base64",
        "body_size": 5,
        "body_truncated": True,
    }
    assert shown["decision"] is None
