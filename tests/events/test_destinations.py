"""The bus and its destinations against real receivers: Debian's rsyslog
(RFC 5424 over TCP with octet counting, and over TLS with the GnuTLS and
OpenSSL drivers), an HTTP collector (Splunk HEC shape and a JSON array),
the spool through a receiver outage and a restart, and the overflow of the
memory queue to disk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.events.receivers import http_receiver, rsyslog

from edgeward.events import Bus, Event, Principal, spec
from edgeward.events.syslog import INFO, NOTICE


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    made = Bus(tmp_path / "spool", backoff_max=0.2)
    yield made
    made.close(wait=0.5)


def event(n: int, kind: str = "credential_created.v0", role: str = "admin") -> Event:
    return Event(kind, {"id": f"at_{n:04d}", "n": n}, Principal("ak_test", role=role))


def everything(*destinations: str) -> list[spec.SubscriptionSpec]:
    return [spec.subscription("esb_all", ["*"], list(destinations))]


@pytest.mark.parametrize("driver", ["gtls", "ossl"])
def test_syslog_over_tcp_and_tls_reach_rsyslog(bus: Bus, tmp_path: Path, driver: str) -> None:
    with rsyslog(tmp_path / "rsyslog", tls_driver=driver) as daemon:
        destinations = [
            spec.destination(
                "ed_tcp", "json", {"syslog": {"address": f"127.0.0.1:{daemon.tcp_port}"}}
            )
        ]
        if daemon.tls_port is None:
            pytest.skip(f"rsyslog's {driver} network stream driver is not installed")
        destinations.append(
            spec.destination(
                "ed_tls",
                "ocsf",
                {
                    "syslog": {
                        "address": f"127.0.0.1:{daemon.tls_port}",
                        "tls": {"ca": str(daemon.pem.ca), "server_name": "syslog.test"},
                        "app_name": "edge-1",
                        "facility": "local3",
                    }
                },
            )
        )
        bus.configure(destinations, everything("ed_tcp", "ed_tls"))
        sent = [event(1), event(2, "endpoint_bind_refused.v0"), event(3)]
        for e in sent:
            bus.publish(e)
        lines = daemon.wait(6)
    tcp = [line for line in lines if line[2] == "edgeward"]
    tls = [line for line in lines if line[2] == "edge-1"]
    assert [json.loads(line[5])["event_id"] for line in tcp] == [e.event_id for e in sent]
    assert [line[3] for line in tcp] == [e.event_type for e in sent]  # MSGID
    assert [(line[0], line[1]) for line in tcp] == [
        ("13", str(INFO)),
        ("13", str(NOTICE)),
        ("13", str(INFO)),
    ]
    assert tcp[0][4] == f'[edgeward@32473 event_id="{sent[0].event_id}"]'
    assert json.loads(tcp[0][5])["object"] == {"id": "at_0001", "n": 1}
    ocsf = [json.loads(line[5]) for line in tls]
    assert [o["metadata"]["uid"] for o in ocsf] == [e.event_id for e in sent]
    assert [o["class_uid"] for o in ocsf] == [6003, 6004, 6003]
    assert {line[0] for line in tls} == {"19"}  # local3


def test_syslog_tls_refuses_a_server_the_ca_did_not_sign(bus: Bus, tmp_path: Path) -> None:
    from tests.events.receivers import make_certs

    other = make_certs(tmp_path / "other")
    with rsyslog(tmp_path / "rsyslog") as daemon:
        if daemon.tls_port is None:
            pytest.skip("rsyslog's gtls network stream driver is not installed")
        target = {
            "syslog": {
                "address": f"127.0.0.1:{daemon.tls_port}",
                "tls": {"ca": str(other.ca), "server_name": "syslog.test"},
            }
        }
        bus.configure([spec.destination("ed_tls", "json", target)], everything("ed_tls"))
        bus.publish(event(1))
        delivery = bus.deliveries["ed_tls"]
        for _ in range(200):
            if delivery.failures:
                break
            time.sleep(0.05)
        assert delivery.failures and delivery.delivered == 0
        assert delivery.spool.pending > 0  # kept for when the CA is fixed
        assert daemon.lines() == []


def test_http_hec_and_json_array_shapes(bus: Bus) -> None:
    with http_receiver() as hec, http_receiver() as plain:
        bus.configure(
            [
                spec.destination(
                    "ed_hec", "json", {"http": {"url": hec.url, "shape": "hec", "token": "s3"}}
                ),
                spec.destination("ed_json", "ocsf", {"http": {"url": plain.url, "token": "b"}}),
            ],
            everything("ed_hec", "ed_json"),
        )
        sent = [event(n) for n in range(5)]
        for e in sent:
            bus.publish(e)
        got = hec.wait(5)
        arrays = plain.wait(5)
    assert [e["event_id"] for e in got] == [e.event_id for e in sent]
    assert hec.requests[0].headers["authorization"] == "Splunk s3"
    first = json.loads(hec.requests[0].body.decode().splitlines()[0])
    assert first["sourcetype"] == "_json" and first["source"] == "edgeward"
    assert abs(first["time"] - sent[0].time) < 0.01
    assert plain.requests[0].headers["authorization"] == "Bearer b"
    assert plain.requests[0].body.startswith(b"[")
    assert [a["metadata"]["uid"] for a in arrays] == [e.event_id for e in sent]


def test_a_receiver_outage_loses_nothing_and_keeps_order(bus: Bus) -> None:
    """Stop the collector, publish, start it again: every event arrives
    once, in order (the connection was refused, so nothing was half
    delivered: exactly once here; at least once in general)."""
    with http_receiver() as receiver:
        bus.configure(
            [spec.destination("ed_siem", "json", {"http": {"url": receiver.url}})],
            everything("ed_siem"),
        )
        for n in range(10):
            bus.publish(event(n))
        receiver.wait(10)
        receiver.stop()
        for n in range(10, 300):
            bus.publish(event(n))
        delivery = bus.deliveries["ed_siem"]
        for _ in range(400):
            if delivery.failures:
                break
            time.sleep(0.05)
        assert delivery.failures > 0 and delivery.spool.pending > 0
        receiver.start()
        got = receiver.wait(300)
    assert [e["object"]["n"] for e in got] == list(range(300))


def test_a_refusing_collector_gets_the_batch_again(bus: Bus) -> None:
    """503 (down but listening): the batch stays and is sent again."""
    with http_receiver() as receiver:
        receiver.status = 503
        bus.configure(
            [spec.destination("ed_siem", "json", {"http": {"url": receiver.url, "shape": "hec"}})],
            everything("ed_siem"),
        )
        for n in range(50):
            bus.publish(event(n))
        delivery = bus.deliveries["ed_siem"]
        for _ in range(400):
            if delivery.failures >= 2:
                break
            time.sleep(0.05)
        assert receiver.events() == []
        receiver.status = 200
        got = receiver.wait(50)
    assert [e["object"]["n"] for e in got] == list(range(50))


def test_a_fixed_token_applies_to_the_waiting_batch(bus: Bus) -> None:
    """A wrong token: 401s, kept; the destination changed to the right one
    sends the same batch with it (no event lost, no restart)."""
    with http_receiver() as receiver:
        receiver.authorization = "Splunk right"
        wrong = {"http": {"url": receiver.url, "shape": "hec", "token": "wrong"}}
        bus.configure([spec.destination("ed_siem", "json", wrong)], everything("ed_siem"))
        for n in range(20):
            bus.publish(event(n))
        delivery = bus.deliveries["ed_siem"]
        for _ in range(400):
            if delivery.failures >= 3:
                break
            time.sleep(0.05)
        right = {"http": {"url": receiver.url, "shape": "hec", "token": "right"}}
        bus.configure([spec.destination("ed_siem", "json", right)], everything("ed_siem"))
        assert bus.deliveries["ed_siem"] is delivery  # same sender, same spool
        got = receiver.wait(20)
    assert [e["object"]["n"] for e in got] == list(range(20))


def test_the_spool_survives_a_restart_of_the_edge(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        receiver.stop()
        destination = spec.destination("ed_siem", "json", {"http": {"url": receiver.url}})
        first = Bus(tmp_path / "spool", backoff_max=0.2)
        first.configure([destination], everything("ed_siem"))
        for n in range(40):
            first.publish(event(n))
        assert first.flush()
        first.close(wait=0.2)
        assert receiver.events() == []
        receiver.start()
        second = Bus(tmp_path / "spool", backoff_max=0.2)
        try:
            second.configure([destination], everything("ed_siem"))
            second.publish(event(40))
            got = receiver.wait(41)
        finally:
            second.close(wait=0.5)
    assert [e["object"]["n"] for e in got] == list(range(41))


def test_a_full_queue_overflows_to_disk_in_order(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    bus = Bus(tmp_path / "spool", max_queued=1)
    bus.configure(
        [spec.destination("ed_f", "json", {"file": {"path": str(out)}})], everything("ed_f")
    )
    for n in range(3000):
        bus.publish(event(n))
    overflowed = bus.overflowed
    assert bus.flush(30)
    bus.close(wait=10)
    got = [json.loads(line)["object"]["n"] for line in out.read_text().splitlines()]
    assert got == list(range(3000))
    assert overflowed > 0


def test_subscriptions_filter_by_type_globs_and_cel(bus: Bus, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    bus.configure(
        [spec.destination("ed_f", "json", {"file": {"path": str(out)}})],
        [
            spec.subscription(
                "esb_1", ["credential_*"], ["ed_f"], 'principal.role == "admin" && object.n > 1'
            ),
            spec.subscription("esb_2", ["endpoint_bound.v0"], ["ed_f"]),
            spec.subscription("esb_3", ["*"], ["ed_f"], "object.nope == 1"),  # error: no match
        ],
    )
    bus.publish(event(1))  # n too small
    bus.publish(event(2))  # yes
    bus.publish(event(3, role="developer"))  # role
    bus.publish(event(4, "api_key_created.v0"))  # type
    bus.publish(event(5, "endpoint_bound.v0"))  # yes (no filter)
    bus.publish(event(6, "credential_deleted.v0"))  # yes
    assert bus.flush()
    bus.close(wait=2)
    got = [json.loads(line)["object"]["n"] for line in out.read_text().splitlines()]
    assert got == [2, 5, 6]


def test_a_deleted_destination_stops_and_its_spool_goes(bus: Bus, tmp_path: Path) -> None:
    with http_receiver() as receiver:
        receiver.stop()
        bus.configure(
            [spec.destination("ed_gone", "json", {"http": {"url": receiver.url}})],
            everything("ed_gone"),
        )
        bus.publish(event(1))
        assert bus.flush()
        spool = bus.deliveries["ed_gone"].spool.directory
        assert spool.exists()
        bus.configure([], [])
        for _ in range(200):
            if not spool.exists():
                break
            time.sleep(0.05)
        assert not spool.exists()
