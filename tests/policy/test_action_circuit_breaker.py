"""circuit-breaker: the state machine on a fake clock (no sleeps), the
action through the engine (outcomes reported by `on_complete`), and end to
end through `edgeward serve` against an upstream that fails, then recovers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgeward.hookdriver import drive_sync as run_hooked
from edgeward.hooks import (
    ExchangeSummary,
    Forward,
    LocalResponse,
    PassResponse,
    RequestHead,
    ResponseHead,
)
from edgeward.policy.circuit import Breaker, Breakers, Outcome, Settings, State, outcome

from .e2e import BACKENDS, Handler, Reply, events, running_edge, serve
from .helpers import ENDPOINT, Harness, conn, load, load_error, one, request

OK, FAIL, UNKNOWN = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN
SETTINGS = Settings(error_threshold=0.5, volume_threshold=4, window=10.0, tripped=5.0, buckets=10)


def run(breaker: Breaker, now: float, result: Outcome) -> bool:
    """One request at `now`: admitted or not; if admitted, `result` is
    recorded at the same time."""
    admission = breaker.admit(now)
    if admission.allowed:
        breaker.record(result, probe=admission.probe, now=now)
    return admission.allowed


# --- the state machine ---------------------------------------------------------------


def test_opens_at_the_error_ratio_once_the_volume_is_reached() -> None:
    b = Breaker(SETTINGS)
    for t in (0.0, 0.1, 0.2):
        assert run(b, t, FAIL)
    assert b.state is State.CLOSED  # 3 outcomes < volume_threshold 4
    assert run(b, 0.3, OK)
    assert b.state is State.OPEN  # 2 errors of 4 >= 0.5
    admission = b.admit(1.3)
    assert not admission.allowed and admission.retry_after == pytest.approx(4.0)


def test_below_the_ratio_stays_closed() -> None:
    b = Breaker(SETTINGS)
    for i, result in enumerate([FAIL, OK, OK, OK, FAIL, OK, OK, OK]):
        assert run(b, i * 0.1, result)
    assert b.state is State.CLOSED and b.volume(0.8) == (8, 2)


def test_the_window_forgets_old_outcomes() -> None:
    b = Breaker(SETTINGS)
    for t in (0.0, 0.5, 1.0):
        run(b, t, FAIL)
    assert b.volume(9.9) == (3, 3)
    assert b.volume(10.6) == (1, 1)  # the 0.0-1.0 s buckets left the window one by one
    run(b, 11.0, FAIL)
    assert b.state is State.CLOSED  # 2 outcomes in the window now
    assert b.volume(30.0) == (0, 0)


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    b = Breaker(SETTINGS)
    for t in range(4):
        run(b, t * 0.01, FAIL)
    assert b.state is State.OPEN and b.opened_at == 0.03
    assert not b.admit(5.0).allowed  # tripped for 5 s from 0.03
    probe = b.admit(5.03)
    assert probe.allowed and probe.probe and b.state is State.HALF_OPEN
    other = b.admit(5.5)
    assert not other.allowed and other.retry_after == pytest.approx(4.53)
    b.record(OK, probe=True, now=6.0)
    assert b.state is State.CLOSED and b.volume(6.0) == (0, 0)  # a fresh window
    assert b.admit(6.1).allowed


def test_a_failed_probe_opens_again() -> None:
    b = Breaker(SETTINGS)
    for _ in range(4):
        run(b, 0.0, FAIL)
    assert run(b, 5.0, FAIL)  # the probe
    assert b.state is State.OPEN and b.opened_at == 5.0
    assert not b.admit(9.9).allowed and b.admit(10.0).allowed


def test_a_probe_without_an_answer_frees_the_slot_and_a_lost_one_expires() -> None:
    b = Breaker(SETTINGS)
    for _ in range(4):
        run(b, 0.0, FAIL)
    assert b.admit(5.0).probe
    b.record(UNKNOWN, probe=True, now=5.1)  # e.g. the client went away
    assert b.state is State.HALF_OPEN and b.admit(5.2).probe
    assert not b.admit(9.0).allowed  # that probe is still out
    assert b.admit(10.2).probe  # ... and never reported: replaced after `tripped`


def test_outcomes_of_requests_admitted_before_opening_are_ignored() -> None:
    b = Breaker(SETTINGS)
    late = [b.admit(0.0) for _ in range(2)]
    for _ in range(4):
        run(b, 0.1, FAIL)
    assert b.state is State.OPEN
    for admission in late:
        b.record(OK, probe=admission.probe, now=0.2)
    assert b.state is State.OPEN


def test_threshold_zero_trips_at_the_volume() -> None:
    # the Kubernetes guide's example: 1 request, then tripped
    b = Breaker(Settings(error_threshold=0.0, volume_threshold=1, window=60, tripped=120))
    assert run(b, 0.0, OK) and b.state is State.OPEN


def test_unknown_outcomes_count_neither_way() -> None:
    b = Breaker(SETTINGS)
    for _ in range(10):
        run(b, 0.0, UNKNOWN)
    assert b.volume(0.0) == (0, 0) and b.state is State.CLOSED


@given(st.lists(st.tuples(st.floats(0, 0.99), st.sampled_from([OK, FAIL, UNKNOWN]))))
@example(  # successes leave the window, then an outcome that counts neither way
    [(0.5, OK)] * 5 + [(0.75, OK)] * 3 + [(0.75, FAIL)] * 4 + [(0.875, FAIL)] * 2
    + [(0.0, FAIL), (0.5, UNKNOWN)]
)  # fmt: skip
def test_closed_means_the_window_is_under_the_threshold(steps: list[tuple[float, Outcome]]) -> None:
    b = Breaker(SETTINGS)
    now = 0.0
    for dt, result in steps:
        now += dt
        run(b, now, result)
        if b.state is State.CLOSED:
            total, errors = b.volume(now)
            assert total < SETTINGS.volume_threshold or errors < 0.5 * total


def test_outcome_of_an_exchange() -> None:
    def summary(status: int, upstream: str | None = "http://up") -> ExchangeSummary:
        return ExchangeSummary(status, 0, 0, 0.01, upstream, None)

    assert outcome(summary(200)) is OK and outcome(summary(404)) is OK
    assert outcome(summary(500)) is FAIL and outcome(summary(502)) is FAIL
    assert outcome(summary(500, None)) is UNKNOWN  # the policy answered
    assert outcome(summary(0)) is UNKNOWN  # no answer reached the client


def test_breakers_are_bounded() -> None:
    breakers = Breakers(SETTINGS, max_keys=3)
    first = breakers.get("a")
    for key in "bcd":
        breakers.get(key)
    assert len(breakers) == 3 and breakers.get("a") is not first


# --- the action through the engine ---------------------------------------------------


def drive(h: Harness, upstream_status: int, url: str = "/") -> int:
    """One exchange through the policy, completed as the proxy does."""
    head = RequestHead(b"GET", url.encode(), b"app.example.com", b"https", [], b"1.1")
    ex = h.policy.begin(conn(), ENDPOINT, head, "req-1")
    outcome_ = run_hooked(ex.on_http_request(head), lambda e: None)
    if isinstance(outcome_, Forward):
        response = ResponseHead(upstream_status, [])
        upstream: str | None = "http://up"
    else:
        assert isinstance(outcome_, LocalResponse)
        response = ResponseHead(outcome_.status, outcome_.headers)
        upstream = None
    final = run_hooked(ex.on_http_response(response), lambda e: None)
    assert isinstance(final, LocalResponse | PassResponse)
    status = final.status if isinstance(final, LocalResponse) else final.head.status
    ex.on_complete(ExchangeSummary(status, 0, 0, 0.01, upstream, None))
    return status


POLICY = """
on_http_request:
  - actions:
      - type: circuit-breaker
        config:
          error_threshold: 0.5
          volume_threshold: 4
          window_duration: 10s
          tripped_duration: 5s
"""


def test_the_action_trips_on_upstream_errors_and_recovers() -> None:
    h = load(POLICY)
    assert [drive(h, 500) for _ in range(4)] == [500] * 4
    h.now += 1
    assert drive(h, 200) == 503  # open: the upstream is not asked
    r = request(h)
    assert isinstance(r.request, LocalResponse) and r.request.error_code == "ERR_EDGEWARD_3202"
    assert r.header("retry-after") == ["4"]
    assert h.events[-1].verdict == "deny" and h.events[-1].reason == "circuit breaker tripped"
    h.now += 4
    assert drive(h, 200) == 200  # the probe, which succeeds: closed
    assert [drive(h, 200) for _ in range(3)] == [200] * 3


def test_requests_the_policy_answers_itself_do_not_count() -> None:
    h = load(
        POLICY
        + """
  - expressions: ["req.url.path == '/denied'"]
    actions: [{type: custom-response, config: {status_code: 500}}]
"""
    )
    assert [drive(h, 200, "/denied") for _ in range(10)] == [500] * 10
    assert drive(h, 200) == 200


def test_a_bucket_per_path() -> None:
    h = load(
        POLICY.replace(
            "tripped_duration: 5s", "tripped_duration: 5s\n          bucket: ${req.url.path}"
        )
    )
    assert [drive(h, 500, "/a") for _ in range(4)] == [500] * 4
    assert drive(h, 200, "/a") == 503
    assert drive(h, 200, "/b") == 200


def test_enforce_false_never_trips() -> None:
    h = load(
        POLICY.replace("tripped_duration: 5s", "tripped_duration: 5s\n          enforce: false")
    )
    assert [drive(h, 500) for _ in range(10)] == [500] * 10


def test_legacy_field_names_are_accepted_with_a_warning() -> None:
    h = load(
        one(
            "circuit-breaker",
            "tripped_duration: 30s, rolling_window: 60s, num_buckets: 10,"
            " volume_threshold: 100, error_threshold_percentage: 0.5",
        )
    )
    warnings = [str(w) for w in h.policy.warnings]
    assert any("'rolling_window' is another spelling of 'window_duration'" in w for w in warnings)
    assert any("'error_threshold_percentage' is another spelling of" in w for w in warnings)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("error_threshold: 1.5", "error_threshold must be at most 1, not 1.5"),
        ("volume_threshold: 0", "volume_threshold must be at least 1"),
        ("window_duration: 3m", "window_duration must be at most 120s, not 180s"),
        ("tripped_duration: 500ms", "tripped_duration must be at least 1s, not 0.5s"),
        ("rolling_window: 10s, window_duration: 10s", "same field"),
        ("threshold: 1", "unknown field 'threshold'"),
    ],
)
def test_config_errors(config: str, message: str) -> None:
    assert message in str(load_error(one("circuit-breaker", config)))


def test_only_in_the_request_phase() -> None:
    err = load_error(one("circuit-breaker", phase="on_http_response"))
    assert "cannot run in on_http_response" in str(err)


# --- end to end ------------------------------------------------------------------------


class Flaky:
    """An upstream that answers 500 until told to recover."""

    def __init__(self) -> None:
        self.failing = True
        self.lock = threading.Lock()

    def route(self, handler: Handler) -> Reply:
        with self.lock:
            failing = self.failing
        return (500, [], b"broken\n") if failing else (200, [], b"fine\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_opens_on_upstream_5xx_and_recovers_through_half_open(tmp_path: Path, backend: str) -> None:
    flaky = Flaky()
    policy = """
on_http_request:
  - actions:
      - type: circuit-breaker
        config:
          error_threshold: 0.5
          volume_threshold: 3
          window_duration: 60s
          tripped_duration: 1s
"""
    with serve({"/": flaky.route}) as up, running_edge(tmp_path, policy, up.url, backend) as edge:
        with httpx.Client(base_url=edge.url(), timeout=10) as client:
            assert [client.get("/").status_code for _ in range(3)] == [500] * 3
            open_ = client.get("/")
            assert open_.status_code == 503
            assert open_.headers["edgeward-error"] == "ERR_EDGEWARD_3202"
            assert open_.headers["retry-after"] == "1"
            assert up.hits["/"] == 3  # the open circuit did not reach the upstream
            # Half-open after tripped_duration (1 s): one probe reaches the
            # upstream; it still fails, so the circuit opens again.
            probe = _after_tripped(client)
            assert probe.status_code == 500 and up.hits["/"] == 4
            assert client.get("/").status_code == 503
            flaky.failing = False
            assert _after_tripped(client).status_code == 200  # the probe succeeds: closed
            assert [client.get("/").status_code for _ in range(5)] == [200] * 5
            assert up.hits["/"] == 10
        tripped = [e for e in events(edge) if e.get("action") == "circuit-breaker"]
        assert tripped and all(e["status"] == 503 for e in tripped)


def _after_tripped(client: httpx.Client) -> httpx.Response:
    """The first answer that is not the open circuit's 503 (polled: the
    edge's own clock decides when the circuit half-opens)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = client.get("/")
        if r.headers.get("edgeward-error") != "ERR_EDGEWARD_3202":
            return r
        time.sleep(0.1)
    raise AssertionError("the circuit never half-opened")
