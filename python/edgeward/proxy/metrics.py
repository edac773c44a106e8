"""What `/metrics` reports: plain counters on the hot path, Prometheus
metric families built from them at scrape time.

prometheus-client's own `Counter.labels(...).inc()` and
`Histogram.observe()` take a lock and look the label set up on every call;
per request that is measurable. So an exchange bumps plain dicts here
(`Stats.exchange`: two dict updates and a bisect), gauges are read from the
server when scraped, and `EdgeCollector` turns all of it into metric
families only when `/metrics` is asked for. Label values come from the
config (endpoint, rule and listener names; event destinations' ids, also
made through the admin API), the status code, the protocol and the edge's
own error codes, never from the request (a Host header or a path would let
a client grow the label set without bound).

The event bus (`edgeward serve` with `api:`) is read the same way: its
`Bus.stats()` per scrape, plain ints its threads keep, no lock taken on the
publishing path."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from edgeward import http1, linefile, native
from edgeward.events import bus as event_bus
from edgeward.proxy import errors

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (seconds) of the request latency histogram."""

UPSTREAM_ERRORS = frozenset(
    e.code
    for e in (
        errors.UPSTREAM_BAD_RESPONSE,
        errors.UPSTREAM_CONNECT_TIMEOUT,
        errors.UPSTREAM_REFUSED,
        errors.UPSTREAM_RESET,
        errors.UPSTREAM_TIMEOUT,
        errors.UPSTREAM_TLS,
    )
)


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one: above every bound
        self.sum = 0.0


class Stats:
    """Counters the data plane bumps; shared by all config generations."""

    __slots__ = ("latency", "reloads", "requests", "upstream_errors")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int, str], int] = {}  # endpoint, status, protocol
        self.latency: dict[str, _Histogram] = {}  # by endpoint
        self.upstream_errors: dict[tuple[str, str], int] = {}  # endpoint, error code
        self.reloads = {"ok": 0, "failed": 0}

    def rejected(self, status: int, protocol: str) -> None:
        """A request answered before it could be routed (it could not be
        parsed, or its head came too slowly): counted with no endpoint."""
        requests = self.requests
        key = ("", status, protocol)
        requests[key] = requests.get(key, 0) + 1

    def exchange(
        self, endpoint: str, status: int, protocol: str, seconds: float, error: str | None
    ) -> None:
        """One finished exchange (`ProxyExchange._complete`)."""
        requests = self.requests
        key = (endpoint, status, protocol)
        requests[key] = requests.get(key, 0) + 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = _Histogram()
        histogram.counts[bisect_left(BUCKETS, seconds)] += 1
        histogram.sum += seconds
        if error is not None and error in UPSTREAM_ERRORS:
            errs = self.upstream_errors
            errs[endpoint, error] = errs.get((endpoint, error), 0) + 1


@dataclass(frozen=True, slots=True)
class Gauges:
    """Read from the running server at scrape time."""

    connections: Callable[[], int]
    http2_streams: Callable[[], int]
    ready: Callable[[], bool]


DecisionCounts = Callable[[], Iterable[tuple[tuple[str | None, str, str | None, str], int]]]
"""The policy engine's decision counts by (endpoint, rule, action, verdict),
read at scrape time (`edgeward.policy.events.DECISIONS.items`)."""


class EdgeCollector(Collector):
    """Every edgeward metric, built from `Stats`, `Gauges` and the policy
    engine's decision counts per scrape."""

    def __init__(self, stats: Stats, gauges: Gauges, decisions: DecisionCounts) -> None:
        self.stats = stats
        self.gauges = gauges
        self.decisions = decisions

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        requests = CounterMetricFamily(
            "edgeward_requests",
            "Exchanges answered, by endpoint (empty: no endpoint matched, or refused before"
            " routing), status and protocol.",
            labels=["endpoint", "status", "protocol"],
        )
        for (endpoint, status, protocol), n in list(stats.requests.items()):
            requests.add_metric([endpoint, str(status), protocol], n)
        yield requests

        latency = HistogramMetricFamily(
            "edgeward_request_duration_seconds",
            "From the request head to the last response byte, by endpoint.",
            labels=["endpoint"],
        )
        for endpoint, histogram in list(stats.latency.items()):
            buckets, total = [], 0
            for bound, n in zip((*BUCKETS, float("inf")), histogram.counts, strict=True):
                total += n
                buckets.append((_bound(bound), total))
            latency.add_metric([endpoint], buckets, histogram.sum)
        yield latency

        upstream = CounterMetricFamily(
            "edgeward_upstream_errors",
            "Exchanges that failed at the upstream, by endpoint and edgeward-error code.",
            labels=["endpoint", "code"],
        )
        for (endpoint, code), n in list(stats.upstream_errors.items()):
            upstream.add_metric([endpoint, code], n)
        yield upstream

        decisions = CounterMetricFamily(
            "edgeward_policy_decisions",
            "Traffic policy events (decisions, errors, log actions) by endpoint, rule,"
            " action and verdict.",
            labels=["endpoint", "rule", "action", "verdict"],
        )
        for (endpoint_name, rule, action, verdict), n in list(self.decisions()):
            decisions.add_metric([endpoint_name or "", rule, action or "", verdict], n)
        yield decisions

        reloads = CounterMetricFamily(
            "edgeward_reloads", "Config reloads (SIGHUP) by result.", labels=["result"]
        )
        for result, n in stats.reloads.items():
            reloads.add_metric([result], n)
        yield reloads

        dropped = CounterMetricFamily(
            "edgeward_log_records_dropped",
            "Log, access-log and event records dropped because their output was not keeping up.",
            labels=["output"],
        )
        for output in linefile.outputs():
            dropped.add_metric([output.key], output.dropped)
        yield dropped

        bus = event_bus.current()
        if bus is not None:
            yield from _event_metrics(bus.stats())

        gauges = self.gauges
        yield GaugeMetricFamily(
            "edgeward_connections_active", "Open client connections.", gauges.connections()
        )
        yield GaugeMetricFamily(
            "edgeward_http2_streams_active", "Open HTTP/2 streams.", gauges.http2_streams()
        )
        yield GaugeMetricFamily(
            "edgeward_ready", "1 while the listeners are bound and not draining.", gauges.ready()
        )
        info = GaugeMetricFamily(
            "edgeward_build_info",
            "The matcher backend and the HTTP/1 codec build running.",
            labels=["backend", "http1_compiled"],
        )
        info.add_metric([native.BACKEND, str(http1.COMPILED).lower()], 1)
        yield info


def _event_metrics(stats: event_bus.BusStats) -> Iterator[Metric]:
    """The bus's: lost audit events must be something to alert on."""
    yield CounterMetricFamily(
        "edgeward_events_published",
        "Events published to the event bus (admin API audit, agents, policy).",
        stats.published,
    )
    overflow = f"{event_bus.OVERFLOW!r} (no destination's id) is the bus's own overflow spool"
    dropped = CounterMetricFamily(
        "edgeward_events_dropped",
        "Events dropped because a spool was full, by destination id; "
        f"{overflow}, used while its dispatcher is behind: its drops reach no destination.",
        labels=["destination"],
    )
    spooled = GaugeMetricFamily(
        "edgeward_events_spooled_bytes",
        f"Bytes waiting in each spool for its receiver, by destination id; {overflow}.",
        labels=["destination"],
    )
    for spool in stats.spools:
        dropped.add_metric([spool.destination], spool.dropped)
        spooled.add_metric([spool.destination], spool.pending_bytes)
    yield dropped
    yield spooled


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
