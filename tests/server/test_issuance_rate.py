"""Per-client token issuance rate limits: token buckets, 429 + Retry-After (RFC 6585 §4)."""

from __future__ import annotations

import httpx
import pytest

from tokengate.core.errors import IssuanceRateExceeded
from tokengate.server import Settings, create_app
from tokengate.server.issuance_rate import IssuanceLimiter, TokenRate
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        pytest.param("50", TokenRate(50, 50), id="burst-defaults-to-one-second"),
        pytest.param("0.5", TokenRate(0.5, 1), id="burst-at-least-one"),
        pytest.param("10:200", TokenRate(10, 200), id="explicit-burst"),
    ],
)
def test_rate_is_parsed(text: str, rate: TokenRate) -> None:
    """`PER_SECOND[:BURST]`: the burst defaults to one second's worth, at least 1."""
    assert TokenRate.parse(text) == rate


@pytest.mark.parametrize("text", ["0", "-1", "x", "inf", "nan", "10:0", "10:x", ":5", ""])
def test_bad_rate_is_refused(text: str) -> None:
    """A rate that is not a positive finite number, or a burst below 1, is refused."""
    with pytest.raises(ValueError, match="PER_SECOND"):
        TokenRate.parse(text)


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    """`burst` at once, then 429 with the seconds until the next token; one per 1/rate after."""
    clock = FakeClock()
    limiter = IssuanceLimiter(TokenRate(0.5, 3), clock)
    for _ in range(3):
        limiter.take("c1")
    with pytest.raises(IssuanceRateExceeded) as refused:
        limiter.take("c1")
    assert refused.value.headers["Retry-After"] == "2"  # 1 token at 0.5/s
    assert (refused.value.status_code, refused.value.error) == (429, "temporarily_unavailable")
    limiter.take("c2")  # another client has its own bucket
    clock.now += 2
    limiter.take("c1")
    with pytest.raises(IssuanceRateExceeded):
        limiter.take("c1")
    clock.now += 3600
    for _ in range(3):  # refilled to the burst, never past it
        limiter.take("c1")
    with pytest.raises(IssuanceRateExceeded):
        limiter.take("c1")


def test_table_is_bounded_and_drops_the_longest_idle() -> None:
    """Past `max_clients` the least recently used bucket goes; a busy client's stays (empty)."""
    clock = FakeClock()
    limiter = IssuanceLimiter(TokenRate(1, 1), clock, max_clients=100)
    for i in range(1000):
        clock.now += 1
        limiter.take("busy")
        limiter.take(f"c{i}")
    assert len(limiter) == 100
    with pytest.raises(IssuanceRateExceeded):
        limiter.take("busy")  # its empty bucket was kept, not dropped and refilled


async def test_token_endpoint_answers_429_past_the_rate_and_others_are_served() -> None:
    """Past its rate a client gets 429 `temporarily_unavailable` + Retry-After and no token is
    stored; another client is issued tokens meanwhile."""
    store = MemoryStore()
    settings = Settings(issuer=ISSUER, max_token_rate=TokenRate(0.1, 2))
    app = create_app(settings, store, FakeClock())
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        harness = Harness(store, FakeClock(), http)
        busy, other = await harness.register(), await harness.register()
        statuses = [(await harness.token(busy)).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        refused = await harness.token(busy)
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "temporarily_unavailable",
            "error_description": "token issuance rate exceeded for this client",
        }
        assert int(refused.headers["retry-after"]) == 10
        assert refused.headers["cache-control"] == "no-store"
        assert (await harness.token(other)).status_code == 200
        issued = {k: v.issued_since for k, v in (await store.client_activity(0)).items()}
        assert issued == {busy.client_id: 2, other.client_id: 1}
    await app.shutdown()


async def test_no_limit_by_default(harness: Harness) -> None:
    """Without `max_token_rate` a client is issued as many tokens as it asks for."""
    client = await harness.register()
    statuses = {(await harness.token(client)).status_code for _ in range(50)}
    assert statuses == {200}
