"""The expiry-bounded, entry-bounded memory cache (RFC 7662 §4)."""

from __future__ import annotations

from typing import Any

import pytest

from tokengate.resource.protocol.claims import INACTIVE
from tokengate.resource.protocol.decision import authorize
from tokengate.resource.protocol.errors import InvalidToken
from tokengate.resource.runtime.cache import MemoryTokenCache
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.testing import FakeClock, claims


def _cache(**options: Any) -> MemoryTokenCache:
    return MemoryTokenCache(stats=Stats(), **options)


def test_keyed_by_the_given_hash(clock: FakeClock) -> None:
    """Entries are found by the key they were stored under, and only by it."""
    cache = _cache(clock=clock)
    cache.put("h1", claims(client_id="c"))
    assert cache.get("h1") is not None
    assert cache.get("h2") is None
    assert len(cache) == 1


def test_lru_bound_by_entry_count(clock: FakeClock) -> None:
    """Beyond `max_entries`, the least recently used entry goes."""
    cache = _cache(max_entries=2, clock=clock)
    cache.put("a", claims())
    cache.put("b", claims())
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", claims())
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2
    assert cache.stats.cache_evictions.value == 1


def test_positive_entry_never_valid_past_exp(clock: FakeClock) -> None:
    """At `exp` the cached answer no longer authorizes anything, without a new lookup."""
    cache = _cache(max_ttl=300, clock=clock)
    cache.put("h", claims(exp=int(clock.now) + 10))
    clock.advance(9.9)
    hit = cache.get("h")
    assert hit is not None
    authorize(hit, now=clock.now)
    clock.advance(0.1)
    expired = cache.get("h")
    assert expired is not None  # remembered as expired: no introspection needed
    with pytest.raises(InvalidToken):
        authorize(expired, now=clock.now)


def test_known_expired_marker_is_bounded_in_time(clock: FakeClock) -> None:
    """The expired marker itself disappears `max_ttl` after `exp`."""
    cache = _cache(max_ttl=60, clock=clock)
    cache.put("h", claims(exp=int(clock.now) + 10))
    clock.advance(10 + 60)
    assert cache.get("h") is None
    assert len(cache) == 0


def test_already_expired_answer_is_remembered(clock: FakeClock) -> None:
    """An active answer whose exp has passed (clock skew) is kept only as an expired marker."""
    cache = _cache(clock=clock)
    cache.put("h", claims(exp=int(clock.now) - 1))
    hit = cache.get("h")
    assert hit is not None
    with pytest.raises(InvalidToken):
        authorize(hit, now=clock.now)


def test_max_ttl_bounds_tokens_without_exp(clock: FakeClock) -> None:
    """Without exp, an entry lives `max_ttl` and then needs a fresh lookup."""
    cache = _cache(max_ttl=30, clock=clock)
    cache.put("h", claims())
    clock.advance(29.9)
    assert cache.get("h") is not None
    clock.advance(0.1)
    assert cache.get("h") is None
    assert cache.stats.cache_expirations.value == 1


def test_max_ttl_bounds_long_lived_tokens(clock: FakeClock) -> None:
    """A token valid for hours is re-checked after `max_ttl` (revocation latency bound)."""
    cache = _cache(max_ttl=30, clock=clock)
    cache.put("h", claims(exp=int(clock.now) + 3600))
    clock.advance(30)
    assert cache.get("h") is None


def test_negative_caching_is_opt_in_and_short(clock: FakeClock) -> None:
    """Inactive answers are cached only when asked, for `negative_ttl`."""
    off = _cache(clock=clock)
    off.put("h", INACTIVE)
    assert off.get("h") is None
    on = _cache(negative_ttl=5, clock=clock)
    on.put("h", INACTIVE)
    assert on.get("h") is INACTIVE
    clock.advance(5)
    assert on.get("h") is None


def test_inactive_answer_replaces_positive_entry(clock: FakeClock) -> None:
    """A fresher "inactive" drops the old positive entry even when not cached itself."""
    cache = _cache(clock=clock)
    cache.put("h", claims(client_id="c"))
    cache.put("h", INACTIVE)
    assert cache.get("h") is None


def test_evict_by_token_hash(clock: FakeClock) -> None:
    """A revocation event's token hash removes exactly that entry."""
    cache = _cache(clock=clock)
    cache.put("h1", claims(client_id="c"))
    cache.put("h2", claims(client_id="c"))
    assert cache.evict_token_hash("h1") is True
    assert cache.evict_token_hash("h1") is False
    assert cache.get("h1") is None
    assert cache.get("h2") is not None
    assert cache.stats.cache_invalidations.value == 1


def test_evict_by_client(clock: FakeClock) -> None:
    """Disabling a client drops all its tokens and nobody else's."""
    cache = _cache(clock=clock)
    cache.put("a1", claims(client_id="a"))
    cache.put("a2", claims(client_id="a"))
    cache.put("b1", claims(client_id="b"))
    cache.put("x", claims())
    assert cache.evict_client("a") == 2
    assert cache.evict_client("a") == 0
    assert cache.get("a1") is None
    assert cache.get("a2") is None
    assert cache.get("b1") is not None
    assert cache.get("x") is not None


def test_client_index_follows_lru_and_replacement(clock: FakeClock) -> None:
    """The client index forgets entries that left by LRU or were replaced."""
    cache = _cache(max_entries=1, clock=clock)
    cache.put("a1", claims(client_id="a"))
    cache.put("b1", claims(client_id="b"))  # evicts a1
    cache.put("b1", claims(client_id="c"))  # same token, new answer
    assert cache.evict_client("a") == 0
    assert cache.evict_client("b") == 0
    assert cache.evict_client("c") == 1


def test_ttl_cap_applies_to_stored_entries(clock: FakeClock) -> None:
    """`set_ttl_cap` shortens entries already cached, and lifting it restores them."""
    cache = _cache(max_ttl=300, clock=clock)
    cache.put("old", claims())
    clock.advance(10)
    cache.set_ttl_cap(5)
    assert cache.ttl_cap == 5
    assert cache.get("old") is None  # stored 10 s ago, cap 5 s
    cache.put("new", claims())
    clock.advance(4.9)
    assert cache.get("new") is not None
    clock.advance(0.1)
    assert cache.get("new") is None
    cache.set_ttl_cap(None)
    cache.put("later", claims())
    clock.advance(200)
    assert cache.get("later") is not None


def test_ttl_cap_rejects_negative() -> None:
    """A negative cap is a programming error."""
    with pytest.raises(ValueError, match="negative"):
        _cache().set_ttl_cap(-1)


def test_hit_and_miss_counters(clock: FakeClock) -> None:
    """Hits and misses are counted for metrics."""
    cache = _cache(clock=clock)
    cache.get("h")
    cache.put("h", claims())
    cache.get("h")
    cache.get("h")
    assert cache.stats.cache_hits.value == 2
    assert cache.stats.cache_misses.value == 1
    cache.clear()
    assert len(cache) == 0
