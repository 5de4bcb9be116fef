"""The validator facade: cache, single-flight, shared cache, 503 on upstream failure."""

from __future__ import annotations

import threading

import anyio
import pytest

from tokengate.core.credentials import hash_value
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.errors import (
    InsufficientScope,
    IntrospectionUnavailable,
    InvalidToken,
    ServiceUnavailable,
)
from tokengate.resource.runtime.cache import CachedClaims, MemoryTokenCache
from tokengate.resource.runtime.validator import SyncValidator, Validator
from tokengate.resource.testing import (
    FakeClock,
    StaticIntrospector,
    SyncStaticIntrospector,
    claims,
    static_sync_validator,
    static_validator,
)


class FlakyIntrospector(StaticIntrospector):
    """A static introspector that can be switched off, and can be slowed down."""

    def __init__(self, tokens: dict[str, TokenClaims]) -> None:
        super().__init__(tokens)
        self.down = False
        self.retry_after: float | None = None
        self.gate: anyio.Event | None = None

    async def introspect(self, token: str) -> TokenClaims:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            self.calls += 1
            raise IntrospectionUnavailable("down", retry_after=self.retry_after)
        return await super().introspect(token)


class DictSharedCache:
    """An in-memory `SharedTokenCache` standing in for Redis."""

    def __init__(self, broken: bool = False) -> None:
        self.entries: dict[str, CachedClaims] = {}
        self.broken = broken
        self.cap: float | None = None

    async def get(self, token_hash: str) -> CachedClaims | None:
        if self.broken:
            raise ConnectionError("redis down")
        return self.entries.get(token_hash)

    async def put(self, token_hash: str, claims: TokenClaims) -> None:
        if self.broken:
            raise ConnectionError("redis down")
        self.entries[token_hash] = CachedClaims(claims, 1e12)

    async def evict_token_hash(self, token_hash: str) -> bool:
        return self.entries.pop(token_hash, None) is not None

    async def evict_client(self, client_id: str) -> int:
        gone = [h for h, e in self.entries.items() if e.claims.client_id == client_id]
        for token_hash in gone:
            del self.entries[token_hash]
        return len(gone)

    def set_ttl_cap(self, seconds: float | None) -> None:
        self.cap = seconds


def _validator(
    clock: FakeClock, tokens: dict[str, TokenClaims], **options: object
) -> tuple[Validator, FlakyIntrospector]:
    introspector = FlakyIntrospector(tokens)
    cache = MemoryTokenCache(clock=clock, max_ttl=60)
    validator = Validator(introspector, cache=cache, clock=clock, **options)  # type: ignore[arg-type]
    return validator, introspector


@pytest.mark.anyio
async def test_second_request_is_served_from_cache(clock: FakeClock) -> None:
    """A validated token is not introspected again while fresh."""
    validator, introspector = _validator(clock, {"t": claims(scope="read")})
    await validator.validate("t", ["read"])
    await validator.validate("t", ["read"])
    assert introspector.calls == 1
    assert validator.stats.cache_hits.value == 1


@pytest.mark.anyio
async def test_cache_is_keyed_by_token_hash(clock: FakeClock) -> None:
    """RFC 9700 §4.9.3: the cache holds the SHA-256 hex of the token, not the token."""
    validator, _ = _validator(clock, {"the-token": claims()})
    await validator.validate("the-token")
    assert validator.cache.get(hash_value("the-token")) is not None
    assert validator.cache.get("the-token") is None


@pytest.mark.anyio
async def test_expired_token_refused_without_introspection(clock: FakeClock) -> None:
    """Once exp is known and passed, the token is refused from cache alone."""
    validator, introspector = _validator(clock, {"t": claims(exp=int(clock.now) + 5)})
    await validator.validate("t")
    clock.advance(5)
    with pytest.raises(InvalidToken, match="expired"):
        await validator.validate("t")
    assert introspector.calls == 1


@pytest.mark.anyio
async def test_scope_and_activity_checks(clock: FakeClock) -> None:
    """Inactive → InvalidToken; missing scope → InsufficientScope."""
    validator, _ = _validator(clock, {"t": claims(scope="read")})
    with pytest.raises(InvalidToken):
        await validator.validate("unknown")
    with pytest.raises(InsufficientScope):
        await validator.validate("t", ["write"])


@pytest.mark.anyio
async def test_upstream_failure_is_503_never_401(clock: FakeClock) -> None:
    """Nothing cached and the AS down → ServiceUnavailable with Retry-After."""
    validator, introspector = _validator(clock, {"t": claims()}, retry_after=9)
    introspector.down = True
    with pytest.raises(ServiceUnavailable) as caught:
        await validator.validate("t")
    assert caught.value.status_code == 503
    assert caught.value.retry_after == 9
    introspector.retry_after = 2.5
    with pytest.raises(ServiceUnavailable) as hinted:
        await validator.validate("t")
    assert hinted.value.retry_after == 3


@pytest.mark.anyio
async def test_cached_tokens_survive_an_outage(clock: FakeClock) -> None:
    """Tokens already cached keep working while the AS is down."""
    validator, introspector = _validator(clock, {"t": claims()})
    await validator.validate("t")
    introspector.down = True
    assert (await validator.validate("t")).active


@pytest.mark.anyio
async def test_failures_are_not_cached(clock: FakeClock) -> None:
    """After an outage the next request introspects again."""
    validator, introspector = _validator(clock, {"t": claims()})
    introspector.down = True
    with pytest.raises(ServiceUnavailable):
        await validator.validate("t")
    introspector.down = False
    assert (await validator.validate("t")).active


@pytest.mark.anyio
async def test_thousand_concurrent_requests_one_introspection(clock: FakeClock) -> None:
    """1,000 concurrent validations of one fresh token → exactly one introspection."""
    validator, introspector = _validator(clock, {"t": claims(scope="read")})
    introspector.gate = anyio.Event()
    results: list[TokenClaims] = []

    async def request() -> None:
        results.append(await validator.validate("t", ["read"]))

    async with anyio.create_task_group() as group:
        for _ in range(1000):
            group.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        introspector.gate.set()
    assert introspector.calls == 1
    assert len(results) == 1000
    assert validator.stats.singleflight_joins.value == 999


@pytest.mark.anyio
async def test_concurrent_failure_gives_every_request_a_503(clock: FakeClock) -> None:
    """Waiters of a failed introspection all get 503, from one call."""
    validator, introspector = _validator(clock, {"t": claims()})
    introspector.down = True
    introspector.gate = anyio.Event()
    statuses: list[int] = []

    async def request() -> None:
        try:
            await validator.validate("t")
        except ServiceUnavailable as exc:
            statuses.append(exc.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        introspector.gate.set()
    assert statuses == [503] * 20
    assert introspector.calls == 1


@pytest.mark.anyio
async def test_eviction_forces_a_new_introspection(clock: FakeClock) -> None:
    """Revocation events (by hash or client) make the next request ask again."""
    validator, introspector = _validator(
        clock, {"a": claims(client_id="c1"), "b": claims(client_id="c2")}
    )
    await validator.validate("a")
    await validator.validate("b")
    assert await validator.evict_token_hash(hash_value("a")) is True
    assert await validator.evict_client("c2") == 1
    introspector.tokens.clear()  # both revoked at the AS
    for token in ("a", "b"):
        with pytest.raises(InvalidToken):
            await validator.validate(token)
    assert introspector.calls == 4


@pytest.mark.anyio
async def test_ttl_cap_reaches_every_layer(clock: FakeClock) -> None:
    """`set_ttl_cap` caps the local and the shared cache."""
    shared = DictSharedCache()
    validator, introspector = _validator(clock, {"t": claims()}, shared_cache=shared)
    await validator.validate("t")
    validator.set_ttl_cap(1)
    assert shared.cap == 1
    clock.advance(1)
    shared.entries.clear()
    await validator.validate("t")
    assert introspector.calls == 2


@pytest.mark.anyio
async def test_shared_cache_saves_introspection_across_validators(clock: FakeClock) -> None:
    """A second process (validator) finds the answer in the shared cache."""
    shared = DictSharedCache()
    first, first_introspector = _validator(clock, {"t": claims()}, shared_cache=shared)
    second, second_introspector = _validator(clock, {"t": claims()}, shared_cache=shared)
    await first.validate("t")
    await second.validate("t")
    assert (first_introspector.calls, second_introspector.calls) == (1, 0)
    assert second.stats.shared_cache_hits.value == 1
    assert await second.evict_token_hash(hash_value("t")) is True
    assert shared.entries == {}
    await first.evict_client("nobody")


@pytest.mark.anyio
async def test_broken_shared_cache_degrades_to_introspection(clock: FakeClock) -> None:
    """A failing shared cache is skipped and counted, never fatal."""
    validator, introspector = _validator(clock, {"t": claims()}, shared_cache=DictSharedCache(True))
    assert (await validator.validate("t")).active
    assert introspector.calls == 1
    assert validator.stats.shared_cache_errors.value == 2


@pytest.mark.anyio
async def test_static_validator_helper() -> None:
    """`static_validator` validates from a table without network."""
    validator = static_validator({"t": {"active": True, "scope": "read", "sub": "s"}})
    assert (await validator.validate("t", ["read"])).sub == "s"
    await validator.aclose()


def test_sync_validator_mirrors_async_behaviour(clock: FakeClock) -> None:
    """Cache hits, expiry without a call, eviction and 503 work the same in the sync twin."""
    validator = static_sync_validator(
        {"t": claims(exp=int(clock.now) + 5, client_id="c")}, clock=clock
    )
    introspector = validator.introspector
    assert isinstance(introspector, SyncStaticIntrospector)
    validator.validate("t")
    validator.validate("t")
    assert introspector.calls == 1
    assert validator.evict_token_hash(hash_value("t")) is True
    validator.validate("t")
    assert validator.evict_client("c") == 1
    validator.validate("t")
    clock.advance(5)
    with pytest.raises(InvalidToken):
        validator.validate("t")
    assert introspector.calls == 3
    validator.set_ttl_cap(0)
    validator.close()


def test_sync_validator_unavailable_and_threads(clock: FakeClock) -> None:
    """Threads share one introspection; failures become 503."""
    gate = threading.Event()

    class Slow(SyncStaticIntrospector):
        def introspect(self, token: str) -> TokenClaims:
            gate.wait(5)
            if token == "down":
                raise IntrospectionUnavailable("down")
            return super().introspect(token)

    introspector = Slow({"t": claims()})
    validator = SyncValidator(introspector, cache=MemoryTokenCache(clock=clock), clock=clock)
    threads = [threading.Thread(target=validator.validate, args=("t",)) for _ in range(20)]
    for thread in threads:
        thread.start()
    while validator.stats.singleflight_joins.value < 19:
        threading.Event().wait(0.001)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert introspector.calls == 1
    with pytest.raises(ServiceUnavailable):
        validator.validate("down")
