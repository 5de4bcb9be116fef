"""Brute-force protection of client authentication (RFC 6749 §2.3.1)."""

from __future__ import annotations

import httpx
import pytest

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
    limits = Limits(per_client_and_address=10, per_address=50, window_seconds=30)
    share = limits.shared_by(workers)
    assert (share.per_client_and_address, share.per_address) == shares
    assert share.window_seconds == 30
    for whole, part in ((10, share.per_client_and_address), (50, share.per_address)):
        assert whole <= workers * part < whole + workers


def test_memory_is_bounded() -> None:
    """The failure table never grows past max_keys."""
    throttle = AuthThrottle(max_keys=100)
    for i in range(1000):
        throttle.failed(f"c{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(throttle._counts) <= 100


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
