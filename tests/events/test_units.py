"""The parts of the events package that need no receiver: the `api.events`
section of edge.yml, the OCSF classes, the RFC 5424 message, the spool."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.events import Event, Principal, spec
from edgeward.events.ocsf import to_ocsf
from edgeward.events.spool import Spool
from edgeward.events.syslog import frame, message


def _config(tmp_path: Path, events: str) -> Path:
    path = tmp_path / "edge.yml"
    path.write_text(
        "listeners: [{name: web, address: 127.0.0.1:8080}]\n"
        f"api:\n  address: 127.0.0.1:9443\n  events:\n{events}"
    )
    return path


def test_the_api_events_section(tmp_path: Path) -> None:
    config = load_config(
        _config(
            tmp_path,
            "    - name: siem\n"
            "      format: ocsf\n"
            "      target: {syslog: {address: 127.0.0.1:514}}\n"
            "      sources: [credential_*]\n"
            "      filter: principal.role == 'admin'\n",
        )
    )
    assert config.api is not None
    ((destination, subscription),) = spec.configured(config.api.events)
    assert (destination.id, destination.kind, destination.format) == ("cfg_siem", "syslog", "ocsf")
    assert subscription.types == ("credential_*",) and subscription.destination_ids == ("cfg_siem",)
    for text, message_ in (
        ("    - {name: a, target: {syslog: {address: nope}}}\n", r"target\.syslog\.address"),
        ("    - {name: a, target: {file: {path: stdout}}, filter: 'a =='}\n", "filter.*1:5"),
        ("    - {name: a, target: {file: {path: stdout}}, sources: [Bad]}\n", r"sources\[0\]"),
        ("    - {target: {file: {path: stdout}}}\n", "name"),
        ("    - {name: a, target: {file: {path: x}}, what: 1}\n", "what"),
    ):
        with pytest.raises(ConfigError, match=message_):
            load_config(_config(tmp_path, text))


def _event(kind: str, obj: dict[str, object], principal: Principal) -> dict[str, object]:
    return Event(kind, obj, principal).as_dict()


def test_ocsf_classes() -> None:
    admin = Principal("ak_1", role="admin")
    created = to_ocsf(_event("credential_created.v0", {"id": "at_1"}, admin))
    assert (created["class_uid"], created["activity_id"], created["type_uid"]) == (6003, 1, 600301)
    used = to_ocsf(
        _event("api_key_used.v0", {"method": "DELETE", "path": "/x", "status_code": 403}, admin)
    )
    assert (used["activity_id"], used["status_id"]) == (4, 2)
    agent = Principal("at_1", "credential")
    logon = to_ocsf(_event("tunnel_session_started.v0", {"client_ip": "192.0.2.1"}, agent))
    assert (logon["class_uid"], logon["activity_id"], logon["category_uid"]) == (3002, 1, 3)
    assert logon["src_endpoint"] == {"ip": "192.0.2.1"}
    logoff = to_ocsf(_event("tunnel_session_ended.v0", {}, agent))
    assert logoff["activity_id"] == 2
    refused = to_ocsf(_event("tunnel_session_refused.v0", {"reason": "r"}, agent))
    assert (refused["activity_id"], refused["status_id"]) == (1, 2)
    deny = to_ocsf(
        _event("policy_denied.v0", {"endpoint": "site"}, Principal("192.0.2.9", "client"))
    )
    assert (deny["class_uid"], deny["activity_id"], deny["type_uid"]) == (6004, 2, 600402)
    assert deny["unmapped"]["object"] == {"endpoint": "site"}


def test_an_rfc5424_message() -> None:
    event = _event("credential_created.v0", {"id": "a"}, Principal("ak_1"))
    msg = message(event, facility=13, hostname="h o", app_name="edgeward", procid="7")
    head = f"<110>1 {event['event_timestamp']} ho edgeward 7 credential_created.v0"
    assert msg.startswith(head.encode())
    assert frame(msg) == str(len(msg)).encode() + b" " + msg


def test_the_spool_resumes_at_its_cursor(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    spool.append(["a", "b", "c"])
    records, size = spool.peek(2)
    assert records == [b"a", b"b"]
    spool.commit(size)
    spool.close()
    again = Spool(tmp_path / "s")
    records, size = again.peek(10)
    assert records == [b"c"]
    again.commit(size)
    assert again.pending == 0 and (tmp_path / "s" / "events.jsonl").stat().st_size == 0
    again.close()


def test_a_spool_always_a_little_behind_stays_small(tmp_path: Path) -> None:
    """A steady stream: the reader never catches up, yet the file does not
    grow with all that was ever delivered; order and content survive the
    copies and a restart."""
    spool = Spool(tmp_path / "s", compact_at=1000)
    data = tmp_path / "s" / "events.jsonl"
    sent, got = 0, []
    spool.append([f"event-{sent:05d}"])
    sent += 1
    for _ in range(2000):
        spool.append([f"event-{sent:05d}", f"event-{sent + 1:05d}"])
        sent += 2
        records, size = spool.peek(2)
        got += records
        spool.commit(size)
        assert data.stat().st_size < 3000
    spool.close()
    again = Spool(tmp_path / "s", compact_at=1000)
    records, size = again.peek(sent)
    got += records
    assert got == [f"event-{i:05d}".encode() for i in range(sent)]
    again.close()


def test_a_full_spool_drops_new_events_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s", max_bytes=100)
    spool.append(["x" * 40, "y" * 40])  # 82 bytes
    spool.append(["z" * 40])
    spool.append(["w"])
    assert spool.dropped == 1 and spool.pending == 84
    assert caplog.text.count("dropping new events") == 1
    records, size = spool.peek(10)
    assert records == [b"x" * 40, b"y" * 40, b"w"]
    spool.commit(size)
    spool.append(["z" * 40])  # room again
    assert spool.peek(10)[0] == [b"z" * 40] and "taking events again (1 dropped" in caplog.text
    spool.close()
