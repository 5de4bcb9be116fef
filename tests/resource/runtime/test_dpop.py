"""The validator's DPoP path (RFC 9449 §4.3, §7, §11.1): the proof checked on every request,
cache hit or not, the key against `cnf.jkt`, and each proof accepted once."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.errors import (
    DPOP,
    InvalidDPoPProof,
    InvalidToken,
    ServiceUnavailable,
)
from tokengate.resource.protocol.resolver import Presented
from tokengate.resource.runtime.replay import MemoryReplayStore, ReplayStoreFull
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import DPoPKey, FakeClock, StaticIntrospector, static_validator

pytestmark = pytest.mark.anyio

URL = "https://rs.example/auth-api/hello"
BOUND = "bound-token"
UNBOUND = "plain-token"


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    """The client's key."""
    return DPoPKey()


def _validator(key: DPoPKey, clock: FakeClock, **settings: object) -> Validator:
    tokens = {BOUND: key.bound(scope="read"), UNBOUND: {"active": True, "scope": "read"}}
    return static_validator(tokens, clock=clock, **settings)


def _presented(key: DPoPKey, clock: FakeClock, token: str = BOUND, **proof: object) -> Presented:
    made = key.proof("GET", URL, token=token, iat=clock.now, **proof)  # type: ignore[arg-type]
    return Presented(token, made, DPOP)


async def test_the_proof_is_checked_on_every_request_cache_hit_or_not(key: DPoPKey) -> None:
    """One introspection, then cache hits; each request still needs its own fresh proof."""
    clock = FakeClock()
    validator = _validator(key, clock)
    introspector = validator.introspector
    assert isinstance(introspector, StaticIntrospector)
    for _ in range(3):
        claims = await validator.validate_dpop(
            _presented(key, clock), method="GET", url=URL, required_scopes=["read"]
        )
        assert claims.jkt == key.jkt
    assert introspector.calls == 1
    with pytest.raises(InvalidDPoPProof):  # warm cache, but a proof for another URL
        await validator.validate_dpop(
            _presented(key, clock), method="GET", url=URL + "/other", required_scopes=["read"]
        )
    old = Presented(BOUND, key.proof("GET", URL, token=BOUND, iat=clock.now - 600), DPOP)
    with pytest.raises(InvalidDPoPProof):  # warm cache, but a proof made too long ago
        await validator.validate_dpop(old, method="GET", url=URL)


async def test_a_replayed_proof_is_refused(key: DPoPKey) -> None:
    """RFC 9449 §11.1: the same proof twice is refused the second time."""
    clock = FakeClock()
    validator = _validator(key, clock)
    presented = _presented(key, clock)
    await validator.validate_dpop(presented, method="GET", url=URL)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        await validator.validate_dpop(presented, method="GET", url=URL)


async def test_replay_is_per_validator(key: DPoPKey) -> None:
    """Each resource server keeps its own store: another one is not told (its URL differs)."""
    clock = FakeClock()
    presented = _presented(key, clock)
    await _validator(key, clock).validate_dpop(presented, method="GET", url=URL)
    await _validator(key, clock).validate_dpop(presented, method="GET", url=URL)


async def test_a_shared_store_refuses_a_replay_at_another_replica(key: DPoPKey) -> None:
    """Replicas sharing a store (`RedisReplayStore` in production) refuse each other's replays."""
    clock = FakeClock()
    shared = MemoryReplayStore(clock=clock)
    first = _validator(key, clock)
    second = _validator(key, clock)
    first.replay = second.replay = shared
    presented = _presented(key, clock)
    await first.validate_dpop(presented, method="GET", url=URL)
    with pytest.raises(InvalidDPoPProof):
        await second.validate_dpop(presented, method="GET", url=URL)


@pytest.mark.parametrize(
    ("token", "signer"),
    [
        pytest.param(UNBOUND, "client", id="rfc9449-7.1-unbound-token-with-proof"),
        pytest.param(BOUND, "thief", id="rfc9449-7.1-proof-by-another-key"),
    ],
)
async def test_the_key_must_be_the_tokens(key: DPoPKey, token: str, signer: str) -> None:
    """A proof by another key, or for a token bound to no key, is invalid_token (DPoP)."""
    clock = FakeClock()
    validator = _validator(key, clock)
    by = key if signer == "client" else DPoPKey()
    with pytest.raises(InvalidToken) as caught:
        await validator.validate_dpop(_presented(by, clock, token), method="GET", url=URL)
    assert caught.value.scheme == DPOP


async def test_a_bound_token_as_bearer_is_refused(key: DPoPKey) -> None:
    """RFC 9449 §7.2: the bearer path refuses a bound token, cached or not."""
    clock = FakeClock()
    validator = _validator(key, clock)
    await validator.validate_dpop(_presented(key, clock), method="GET", url=URL)
    with pytest.raises(InvalidToken, match="DPoP-bound"):
        await validator.validate(BOUND)
    with pytest.raises(InvalidToken):
        validator.validate_cached(BOUND)
    assert (await validator.validate(UNBOUND)).active


async def test_an_inactive_token_with_a_good_proof_is_invalid_token(key: DPoPKey) -> None:
    """A good proof does not make an unknown token valid."""
    clock = FakeClock()
    validator = _validator(key, clock)
    with pytest.raises(InvalidToken):
        await validator.validate_dpop(_presented(key, clock, "unknown"), method="GET", url=URL)


async def test_a_full_or_broken_replay_store_fails_closed(key: DPoPKey) -> None:
    """No room (or no Redis) to remember a proof → 503, never an unchecked pass."""
    clock = FakeClock()
    validator = _validator(key, clock, dpop_replay_entries=1)
    await validator.validate_dpop(_presented(key, clock), method="GET", url=URL)
    with pytest.raises(ServiceUnavailable):
        await validator.validate_dpop(_presented(key, clock), method="GET", url=URL)
    clock.advance(validator.settings.dpop.max_age + 1)  # the first proof's window is over
    await validator.validate_dpop(_presented(key, clock), method="GET", url=URL)


def test_the_memory_store_forgets_only_after_the_window() -> None:
    """An entry lasts until its time, then its room is reused; a full store refuses."""
    clock = FakeClock()
    store = MemoryReplayStore(max_entries=2, clock=clock)
    assert store.record("a", clock.now + 10)
    assert not store.record("a", clock.now + 10)
    assert store.record("b", clock.now + 20)
    with pytest.raises(ReplayStoreFull):
        store.record("c", clock.now + 20)
    clock.advance(10)
    assert store.record("c", clock.now + 20)
    assert len(store) == 2
    assert not store.record("b", clock.now + 20)
