"""Brute-force protection of client authentication (RFC 6749 §2.3.1)."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from tokengate.core.errors import TooManyRequests
from tokengate.server import Settings, create_app
from tokengate.server.throttle import AuthThrottle, Limits
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness

pytestmark = pytest.mark.anyio


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_per_pair_and_per_address() -> None:
    """The pair limit trips first; other addresses and the address limit are separate."""
    clock = Clock()
    throttle = AuthThrottle(
        Limits(per_client_and_address=3, per_address=5, window_seconds=60), clock
    )
    for _ in range(3):
        throttle.check("c1", "10.0.0.1")
        throttle.failed("c1", "10.0.0.1")
    with pytest.raises(Exception, match="too many") as raised:
        throttle.check("c1", "10.0.0.1")
    assert raised.value.headers["Retry-After"] == "21"  # type: ignore[attr-defined]
    throttle.check("c1", "10.0.0.2")  # the real client elsewhere is not locked out
    throttle.check("c2", "10.0.0.1")  # another client from the same address: pair is fresh
    throttle.failed("c2", "10.0.0.1")
    throttle.failed("c3", "10.0.0.1")
    with pytest.raises(Exception, match="too many"):
        throttle.check("c4", "10.0.0.1")  # the address itself is now over its limit
    clock.now += 60
    throttle.check("c1", "10.0.0.1")  # a new window


@pytest.mark.parametrize(
    ("workers", "shares"),
    [
        pytest.param(1, (10, 50), id="one-worker-whole-budget"),
        pytest.param(2, (5, 25), id="two-workers-halves"),
        pytest.param(3, (4, 17), id="three-workers-rounded-up"),
        pytest.param(16, (1, 4), id="more-workers-than-failures-one-each"),
    ],
)
def test_each_worker_gets_a_share_of_the_budget(workers: int, shares: tuple[int, int]) -> None:
    """`shared_by(N)`: each budget divided by N, rounded up, so N shares exceed the budget by
    less than N; the window is unchanged."""
    limits = Limits(per_client_and_address=10, per_address=50, window_seconds=30, max_keys=1000)
    share = limits.shared_by(workers)
    assert (share.per_client_and_address, share.per_address) == shares
    assert share.window_seconds == 30
    assert share.max_keys == 1000  # each worker's own table keeps the configured bound
    for whole, part in ((10, share.per_client_and_address), (50, share.per_address)):
        assert whole <= workers * part < whole + workers


def test_memory_is_bounded() -> None:
    """The failure table never grows past max_keys."""
    throttle = AuthThrottle(Limits(max_keys=100))
    for i in range(1000):
        throttle.failed(f"c{i}", f"10.0.{i // 250}.{i % 250}")
        assert len(throttle) <= 100


def flood(throttle: AuthThrottle, failures: int, addresses: int) -> None:
    """`failures` wrong secrets, each for a new client id, from `addresses` addresses (each in
    its own /24, 100 per /16), as the endpoint does: check, then count."""
    for n in range(failures):
        client_id, address = f"tgc_flood{n}", f"10.{(n % addresses) // 100}.{n % 100}.7"
        try:
            throttle.check(client_id, address)
        except TooManyRequests:
            continue
        throttle.failed(client_id, address)


@pytest.mark.parametrize("max_keys", [100_000, 1_000], ids=["default-bound", "small-bound"])
def test_flood_never_lifts_a_lock_out(max_keys: int) -> None:
    """100,000 failures from 2,000 addresses: the locked pair stays locked until its window
    ends, the table stays within its bound, and the real client elsewhere still gets in."""
    clock = Clock()
    throttle = AuthThrottle(Limits(max_keys=max_keys), clock)
    for _ in range(10):
        throttle.failed("victim", "192.0.2.10")
    with pytest.raises(TooManyRequests):
        throttle.check("victim", "192.0.2.10")
    flood(throttle, 100_000, 2_000)
    assert len(throttle) <= max_keys
    with pytest.raises(TooManyRequests):
        throttle.check("tgc_new", "10.0.0.7")  # the flood's own addresses are over their limit
    for _ in range(3):
        with pytest.raises(TooManyRequests):
            throttle.check("victim", "192.0.2.10")
        clock.now += 6  # still inside the window: [960, 1020)
    throttle.check("victim", "198.51.100.1")  # the real client at another address
    clock.now = 1020  # the next window
    throttle.check("victim", "192.0.2.10")


def test_evicted_failures_count_against_the_network() -> None:
    """Under pressure an evicted counter is charged to its /24: guessing from that network
    stops at the per-address limit even though the pair's own counter was forgotten."""
    throttle = AuthThrottle(Limits(per_client_and_address=10, per_address=5, max_keys=4), Clock())
    refused = 0
    for n in range(40):  # one attacker network, one target; other clients' failures evict
        address = f"203.0.113.{n % 4}"
        try:
            throttle.check("victim", address)
        except TooManyRequests:
            refused += 1
            continue
        throttle.failed("victim", address)
        throttle.failed(f"other{n}", "198.51.100.9")
    assert refused > 20
    assert len(throttle) <= 4
    with pytest.raises(TooManyRequests):
        throttle.check("victim", "203.0.113.200")  # same /24, never seen before


def test_fails_closed_when_every_counter_is_locked() -> None:
    """With the table full of locked counters, a failure that finds no room locks everyone
    out until the window ends rather than forgetting a lock-out."""
    clock = Clock()
    throttle = AuthThrottle(Limits(per_client_and_address=1, per_address=1, max_keys=4), clock)
    for n in range(20):
        address = f"10.{n}.0.1"  # each in its own /16: no wider counter is shared
        with contextlib.suppress(TooManyRequests):
            throttle.check(f"c{n}", address)
            throttle.failed(f"c{n}", address)
    assert len(throttle) <= 4
    with pytest.raises(TooManyRequests):
        throttle.check("someone", "192.0.2.99")
    clock.now += 60
    throttle.check("someone", "192.0.2.99")


async def test_endpoint_answers_429_then_real_client_still_works() -> None:
    """After repeated failures from one address: 429 with Retry-After; other peers unaffected."""
    store = MemoryStore()
    limits = Limits(per_client_and_address=3, per_address=100, window_seconds=60)
    app = create_app(Settings(issuer=ISSUER, throttle=limits), store, FakeClock())
    await app.startup()
    attacker = httpx.ASGITransport(app=app, client=("198.51.100.7", 1234))
    owner = httpx.ASGITransport(app=app, client=("192.0.2.10", 1234))
    async with (
        httpx.AsyncClient(transport=attacker, base_url="http://t") as bad,
        httpx.AsyncClient(transport=owner, base_url="http://t") as good,
    ):
        harness = Harness(store, FakeClock(), good)
        client = await harness.register()
        form = {"grant_type": "client_credentials"}
        statuses = [
            (
                await bad.post("/oauth2/token", data=form, auth=(client.client_id, "wrong"))
            ).status_code
            for _ in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        refused = await bad.post("/oauth2/token", data=form, auth=(client.client_id, client.secret))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert (await harness.token(client)).status_code == 200
    await app.shutdown()
