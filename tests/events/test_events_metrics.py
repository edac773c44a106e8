"""What `/metrics` shows of the event bus, scraped as the admin listener
does (prometheus-client's `generate_latest` on a registry holding the
edge's `EdgeCollector`): a destination whose collector refuses everything
(a real HTTP collector answering 503) fills its spool up to a small limit,
the events past it are dropped and counted under its id, and the bytes
waiting are the spool file's; the bus's overflow spool is counted under
its own name; a deleted destination leaves the metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.events.receivers import http_receiver
from tests.events.test_destinations import event, everything

from edgeward.events import Bus, install, spec
from edgeward.events.bus import OVERFLOW
from edgeward.events.spool import DATA
from edgeward.proxy.metrics import EdgeCollector, Gauges, Stats

LIMIT = 4096  # bytes a spool holds in these tests: a few dozen events
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape() -> Samples:
    """Every sample of the edge's metrics text by (name, sorted labels)."""
    registry = CollectorRegistry()
    gauges = Gauges(connections=lambda: 0, http2_streams=lambda: 0, ready=lambda: True)
    registry.register(EdgeCollector(Stats(), gauges, lambda: ()))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def destinations(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["destination"]: v for (n, labels), v in samples.items() if n == name}


def numbers(lines: list[bytes]) -> list[int]:
    """The events' `n`s (the spool took those that fit: the first few, and
    maybe a later one a byte or two shorter than the one refused)."""
    return [json.loads(line)["object"]["n"] for line in lines]


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    made = Bus(tmp_path / "spool", backoff_max=0.2, spool_max_bytes=LIMIT)
    install(made)
    yield made
    install(None)
    made.close(wait=0.5)


def test_no_bus_no_event_metrics() -> None:
    """`edgeward serve` without `api:` runs no bus: nothing to report."""
    install(None)
    assert not [name for name, _ in scrape() if name.startswith("edgeward_events_")]


def test_a_full_spool_counts_its_drops_and_its_bytes(bus: Bus, tmp_path: Path) -> None:
    with http_receiver() as receiver:
        receiver.status = 503  # down but listening: nothing is ever committed
        bus.configure(
            [spec.destination("ed_siem", "json", {"http": {"url": receiver.url}})],
            everything("ed_siem"),
        )
        for n in range(100):
            bus.publish(event(n))
        assert bus.flush()
        full = scrape()
        kept = (tmp_path / "spool" / "ed_siem" / DATA).read_bytes().splitlines()
        assert 0 < len(kept) < 100

        assert full["edgeward_events_published_total", ()] == 100
        assert destinations(full, "edgeward_events_dropped_total") == {
            OVERFLOW: 0,
            "ed_siem": 100 - len(kept),
        }
        spooled = destinations(full, "edgeward_events_spooled_bytes")
        assert spooled == {OVERFLOW: 0, "ed_siem": sum(len(line) + 1 for line in kept)}
        assert spooled["ed_siem"] <= LIMIT

        receiver.status = 200  # the collector is back: the spool empties, the drops stay
        got = receiver.wait(len(kept))
        assert [e["object"]["n"] for e in got] == numbers(kept)
        deadline = time.monotonic() + 10
        while scrape()["edgeward_events_spooled_bytes", (("destination", "ed_siem"),)]:
            assert time.monotonic() < deadline, "the spool was not emptied"
            time.sleep(0.05)
        after = scrape()
        assert destinations(after, "edgeward_events_dropped_total")["ed_siem"] == 100 - len(kept)

        bus.configure([], [])  # deleted through the API: gone from the metrics
        gone = scrape()
    assert destinations(gone, "edgeward_events_dropped_total") == {OVERFLOW: 0}
    assert destinations(gone, "edgeward_events_spooled_bytes") == {OVERFLOW: 0}
    assert gone["edgeward_events_published_total", ()] == 100


def test_the_overflow_spool_counts_under_its_own_name(tmp_path: Path) -> None:
    """Before its first `configure` the dispatcher routes nothing: a queue
    of one is full at once, and the rest goes to the overflow spool, which
    drops what is past its limit. Once routed, what it kept is delivered
    in order and its bytes go to zero; the drops stay counted."""
    out = tmp_path / "events.jsonl"
    bus = Bus(tmp_path / "spool", max_queued=1, spool_max_bytes=LIMIT)
    install(bus)
    try:
        for n in range(100):
            bus.publish(event(n))
        behind = scrape()
        kept = (tmp_path / "spool" / OVERFLOW / DATA).read_bytes().splitlines()
        assert 0 < len(kept) < 99
        dropped = 99 - len(kept)  # the first one is in the queue
        assert destinations(behind, "edgeward_events_dropped_total") == {OVERFLOW: dropped}
        spooled = destinations(behind, "edgeward_events_spooled_bytes")
        assert spooled == {OVERFLOW: sum(len(line) + 1 for line in kept)}

        bus.configure(
            [spec.destination("ed_f", "json", {"file": {"path": str(out)}})], everything("ed_f")
        )
        assert bus.flush(30)
        caught_up = scrape()
    finally:
        install(None)
        bus.close(wait=10)
    assert destinations(caught_up, "edgeward_events_dropped_total") == {
        OVERFLOW: dropped,
        "ed_f": 0,
    }
    assert destinations(caught_up, "edgeward_events_spooled_bytes")[OVERFLOW] == 0
    got = [json.loads(line)["object"]["n"] for line in out.read_text().splitlines()]
    assert got == [0, *numbers(kept)]


def test_no_destination_takes_the_overflow_spools_name(bus: Bus, tmp_path: Path) -> None:
    """Its label value (and directory) is the overflow's alone."""
    out = tmp_path / "events.jsonl"
    bus.configure(
        [spec.destination(OVERFLOW, "json", {"file": {"path": str(out)}})], everything(OVERFLOW)
    )
    assert OVERFLOW not in bus.deliveries
    assert [s.destination for s in bus.stats().spools] == [OVERFLOW]
