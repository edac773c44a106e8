"""rate-limit: the sliding-window counter, its store, the sans-IO action and
the running edge. Time is the harness's clock: every test is deterministic."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy.e2e import BACKENDS, events, running_edge, serve
from tests.policy.helpers import load, load_error, request

from edgeward import native
from edgeward.policy.actions.rate_limit import RateLimit
from edgeward.policy.ratelimit import MemoryStore, NativeStore, RateLimitStore

T0 = 1_700_000_040.0  # a multiple of 60: windows of 60 s start here

API_KEY = "('x-api-key' in req.headers ? req.headers['x-api-key'][0] : 'anonymous')"


def limit(
    capacity: int = 3, rate: str = "60s", keys: str = "[conn.client_ip]", extra: str = ""
) -> str:
    return f"""
        on_http_request:
          - name: throttle
            actions:
              - type: rate-limit
                config:
                  name: per client
                  algorithm: sliding_window
                  capacity: {capacity}
                  rate: {rate}
                  bucket_key: {keys}
                  {extra}
    """


def test_over_capacity_is_429_with_retry_after() -> None:
    h = load(limit())
    h.now = T0
    assert [request(h).status for _ in range(3)] == [200, 200, 200]
    r = request(h)
    assert r.status == 429 and r.forwarded is None
    # Nothing frees before the next window; there the three weigh 3 * (1 - f)
    # and need f >= 1/3: 60 s + 20 s.
    assert r.header("retry-after") == ["80"]
    assert b"ERR_EDGEWARD_3429" in r.body
    (event,) = h.events
    assert event.action == "rate-limit" and event.status == 429
    assert event.error_code == "ERR_EDGEWARD_3429"
    assert event.reason == "rate limit 'per client' (3 per 60s) exceeded"
    assert "192.0.2.10" not in event.reason  # bucket values (API keys...) stay out


def test_retry_after_is_exactly_when_a_request_fits() -> None:
    h = load(limit(capacity=5))
    h.now = T0
    for _ in range(5):
        request(h)
    h.now = T0 + 75  # f = 0.25: load 5 * 0.75 = 3.75, room for one (4.75 <= 5)
    assert request(h).status == 200
    r = request(h)  # load 3.75 + 1 = 4.75; another needs 5*(1-f) + 2 <= 5: f >= 0.4
    wait = int(r.header("retry-after")[0])
    assert wait == 9
    h.now += wait - 1
    assert request(h).status == 429
    h.now += 1
    assert request(h).status == 200


def test_the_previous_window_fades_linearly() -> None:
    h = load(limit(capacity=10))
    h.now = T0 + 59
    assert sum(request(h).status == 200 for _ in range(12)) == 10
    h.now = T0 + 60 + 30  # half of the previous window still counts: 5
    assert sum(request(h).status == 200 for _ in range(12)) == 5
    h.now = T0 + 180  # two windows later: a fresh bucket
    assert sum(request(h).status == 200 for _ in range(12)) == 10


def test_buckets_are_per_key_combination() -> None:
    h = load(limit(capacity=1, keys=f'[conn.client_ip, "{API_KEY}"]'))
    h.now = T0
    assert request(h, headers=[("x-api-key", "k1")]).status == 200
    assert request(h, headers=[("x-api-key", "k1")]).status == 429
    assert request(h, headers=[("x-api-key", "k2")]).status == 200
    assert request(h, headers=[("x-api-key", "k1")], client_ip="198.51.100.9").status == 200
    assert request(h).status == 200  # 'anonymous'


def test_refused_requests_are_not_counted() -> None:
    h = load(limit(capacity=2))
    h.now = T0
    for _ in range(50):
        request(h)
    h.now = T0 + 60 + 30  # 2 * 0.5 = 1: one fits, whatever the 48 refusals
    assert [request(h).status for _ in range(2)] == [200, 429]


def test_results_and_enforce_false() -> None:
    h = load(
        limit(capacity=1, keys=f'[conn.client_ip, "{API_KEY}"]', extra="enforce: false")
        + """
          - expressions: ["actions.ngrok.rate_limit.limited"]
            actions:
              - type: custom-response
                config:
                  status_code: 503
                  body: "slow down, ${actions.ngrok.rate_limit.bucket_key}"
        """
    )
    h.now = T0
    assert request(h, headers=[("x-api-key", "k1")]).forwarded is not None
    r = request(h, headers=[("x-api-key", "k1")])
    assert r.status == 503 and r.body == b'slow down, ["192.0.2.10", "k1"]'


def test_single_key_result_is_the_value_itself() -> None:
    h = load(
        limit(capacity=1)
        + """
          - actions:
              - type: add-headers
                config: {headers: {x-bucket: "${actions.ngrok.rate_limit.bucket_key}"}}
        """
    )
    h.now = T0
    assert request(h).upstream_header("x-bucket") == ["192.0.2.10"]


def test_a_failing_bucket_key_fails_closed() -> None:
    h = load(limit(keys="[\"req.headers['x-api-key'][0]\"]"))
    r = request(h)
    assert r.status == 500 and r.forwarded is None
    assert h.events[0].error_code == "ERR_EDGEWARD_3900"  # a CEL error in an action's config


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("rate: 60s", "rate: 30s"), "at least 60"),
        (("rate: 60s", "rate: 65s"), "multiple of 10 seconds"),
        (("rate: 60s", "rate: 25h"), "at most 86400"),
        (("rate: 60s", "rate: soon"), "not a duration"),
        (("capacity: 3", "capacity: 0"), "at least 1"),
        (("capacity: 3", "capacity: 2000000001"), "at most 2000000000"),
        (("sliding_window", "fixed_window"), "must be one of sliding_window"),
        (("[conn.client_ip]", "[]"), "at least 1"),
        (("[conn.client_ip]", "[" + ", ".join(["conn.client_ip"] * 11) + "]"), "at most 10"),
        (("[conn.client_ip]", "['conn.client_ip +']"), "bucket_key[0]"),
        (("name: per client", "label: x"), "missing required field 'name'"),
        (("name: per client", f"name: {'n' * 1024}"), "longer than 1023"),
    ],
)
def test_load_errors(replace: tuple[str, str], message: str) -> None:
    err = load_error(limit().replace(*replace))
    assert message in str(err), str(err)
    assert "policy.yml:" in str(err)


def test_longer_rates() -> None:
    h = load(limit(capacity=2, rate="1h"))
    h.now = T0 - (T0 % 3600)
    assert [request(h).status for _ in range(3)] == [200, 200, 429]


# --- the store ------------------------------------------------------------------------
# The reference (MemoryStore) and, with the native module, the same counter
# in Rust (NativeStore): the same tests, the same oracle.

STORES = [MemoryStore] + ([NativeStore] if native.RateLimitStore is not None else [])
both_stores = pytest.mark.parametrize("store_class", STORES, ids=lambda c: c.__name__)


@both_stores
def test_memory_is_bounded(store_class: type[MemoryStore]) -> None:
    store = store_class(max_buckets=100)
    for i in range(1000):
        store.hit(f"k{i}", capacity=1, window=60, now=T0)
    assert len(store) == 100
    assert store.hit("k999", capacity=1, window=60, now=T0).allowed is False  # recent: kept
    assert store.hit("k0", capacity=1, window=60, now=T0).allowed is True  # evicted: fresh


@both_stores
def test_idle_buckets_expire(store_class: type[MemoryStore]) -> None:
    store = store_class()
    for i in range(10):
        store.hit(f"k{i}", capacity=1, window=60, now=T0)
    for i in range(10):  # two windows later, each new request retires two idle buckets
        store.hit(f"n{i}", capacity=1, window=60, now=T0 + 120)
    assert len(store) == 10


class Oracle:
    """A deliberately plain model: a log of admitted request times, and the
    definition of the sliding-window estimate recomputed from it."""

    def __init__(self, capacity: int, window: float) -> None:
        self.capacity, self.window = capacity, window
        self.log: dict[str, list[float]] = {}

    def load(self, key: str, now: float) -> float:
        index = math.floor(now / self.window)
        times = self.log.get(key, [])
        current = sum(1 for t in times if math.floor(t / self.window) == index)
        previous = sum(1 for t in times if math.floor(t / self.window) == index - 1)
        fraction = (now - index * self.window) / self.window
        return previous * (1 - fraction) + current

    def hit(self, key: str, now: float) -> bool:
        if self.load(key, now) + 1 <= self.capacity + 1e-6:
            self.log.setdefault(key, []).append(now)
            return True
        return False


@both_stores
@given(
    capacity=st.integers(1, 8),
    steps=st.lists(
        st.tuples(st.sampled_from("abc"), st.floats(0, 50, allow_nan=False)), max_size=60
    ),
)
def test_store_agrees_with_the_oracle(
    store_class: type[MemoryStore], capacity: int, steps: list[tuple[str, float]]
) -> None:
    window = 60.0
    store: RateLimitStore = store_class()
    oracle = Oracle(capacity, window)
    now = T0
    for key, delay in steps:
        now += delay
        decision = store.hit(key, capacity=capacity, window=window, now=now)
        assert decision.allowed is oracle.hit(key, now)
        if not decision.allowed:
            wait = decision.retry_after
            assert wait > 0
            # Sufficient: after `wait` (and nothing else) one request fits...
            assert oracle.load(key, now + wait) + 1 <= capacity + 1e-6
            # ...and minimal: a bit earlier it would not.
            if wait > 0.01:
                assert oracle.load(key, now + wait - 0.01) + 1 > capacity


@both_stores
@given(st.lists(st.floats(0, 30, allow_nan=False), max_size=80))
def test_no_fixed_window_admits_more_than_capacity(
    store_class: type[MemoryStore], delays: list[float]
) -> None:
    store: RateLimitStore = store_class()
    admitted: dict[int, int] = {}
    now = T0
    for delay in delays:
        now += delay
        if store.hit("k", capacity=4, window=60, now=now).allowed:
            admitted[math.floor(now / 60)] = admitted.get(math.floor(now / 60), 0) + 1
    assert all(count <= 4 for count in admitted.values())


@pytest.mark.skipif(native.RateLimitStore is None, reason="no native module")
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 200, allow_nan=False), st.sampled_from([1, 2, 5, 1000])),
        max_size=40,
    )
)
def test_native_store_decides_as_the_reference(steps: list[tuple[float, int]]) -> None:
    """The same Retry-After to the last bit (the 429's header rounds it)."""
    ours, reference = NativeStore(), MemoryStore()
    now = T0
    for delay, capacity in steps:
        now += delay
        kw = {"capacity": capacity, "window": 60.0, "now": now}
        assert ours.hit("k", **kw) == reference.hit("k", **kw)


@pytest.mark.skipif(native.RateLimitStore is None, reason="no native module")
def test_native_store_refuses_nonsense_arguments() -> None:
    store = NativeStore()
    for kw in ({"capacity": 0, "window": 60.0}, {"capacity": 1, "window": 0.0}):
        with pytest.raises(ValueError, match="must be positive"):
            store.hit("k", now=T0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now finite"):
        store.hit("k", capacity=1, window=60.0, now=math.nan)
    assert len(store) == 0


@pytest.mark.skipif(native.PhaseRunner is None, reason="no native phase runner")
@pytest.mark.parametrize(
    "value",
    ["k1", 'a "quoted" \\ value', "é ☃ \U0001f600", "tab\tnew\nline\x01\x1f\x7f", ""],
)
def test_runner_and_engine_count_in_one_bucket(value: str) -> None:
    """The runner's bucket check and the Python action (the engine runs it
    when an earlier step stops the runner) make the same key text, so a
    client cannot get twice the capacity by alternating the two paths."""
    h = load(
        """
        on_http_request:
          - expressions: ["'x-log' in req.headers"]
            actions: [{type: log, config: {metadata: {m: x}}}]
        """
        + limit(capacity=1, keys=f'[conn.client_ip, "{API_KEY}"]').split("on_http_request:")[1]
    )
    (store,) = {
        step.action.store
        for rule in h.policy.rules.values()
        for r in rule
        for step in r.steps
        if isinstance(step.action, RateLimit)
    }
    assert isinstance(store, NativeStore)
    h.now = T0
    assert request(h, headers=[("x-api-key", value)]).status == 200  # the runner counts
    r = request(h, headers=[("x-api-key", value), ("x-log", "1")])  # the engine checks
    assert r.status == 429 and r.header("retry-after") == ["120"]
    h.now = T0 + 200
    assert request(h, headers=[("x-api-key", value), ("x-log", "1")]).status == 200
    r = request(h, headers=[("x-api-key", value)])
    assert r.status == 429
    assert [e.action for e in h.events if e.status == 429] == ["rate-limit", "rate-limit"]
    assert len(store) == 1


# --- end to end ---------------------------------------------------------------------------


def hello(handler: object) -> tuple[int, list[tuple[str, str]], bytes]:
    return 200, [("content-type", "text/plain")], b"hello\n"


@pytest.fixture(scope="module", params=BACKENDS)
def edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    policy = limit(capacity=2, keys=f'[conn.client_ip, "{API_KEY}"]')
    with serve({"/hello": hello}) as upstream:  # type: ignore[dict-item]
        directory = tmp_path_factory.mktemp(f"rate-limit-{request.param}")
        with running_edge(directory, policy, upstream.url, request.param) as running:
            yield running


def test_edge_limits_per_bucket(edge: object) -> None:
    url = edge.url("/hello")  # type: ignore[attr-defined]
    with httpx.Client() as client:
        statuses = [client.get(url, headers={"x-api-key": "one"}).status_code for _ in range(2)]
        limited = client.get(url, headers={"x-api-key": "one"})
        other = client.get(url, headers={"x-api-key": "two"})
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.headers["edgeward-error"] == "ERR_EDGEWARD_3429"
    assert 1 <= int(limited.headers["retry-after"]) <= 90
    assert other.status_code == 200
    out = subprocess.run(
        ["curl", "-s", "-i", "-H", "x-api-key: one", url],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.startswith("HTTP/1.1 429") and "retry-after:" in out.stdout.lower()
    logged = events(edge)  # type: ignore[arg-type]
    assert [e["status"] for e in logged] == [429, 429]
    assert all("one" not in str(e["reason"]) for e in logged)
