"""The validator facade: cache, single-flight, shared cache, 503 on upstream failure."""

from __future__ import annotations

from typing import Any

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
from tokengate.resource.runtime.cache import CachedClaims, SharedTokenCache
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.transport import PooledTransport
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import (
    FakeAuthorizationServer,
    FakeClock,
    HandlerTransport,
    StaticIntrospector,
    claims,
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
    clock: FakeClock,
    tokens: dict[str, TokenClaims],
    *,
    shared_cache: SharedTokenCache | None = None,
    **settings: Any,
) -> tuple[Validator, FlakyIntrospector]:
    """A validator over a `FlakyIntrospector` (no network, no revocation events)."""
    introspector = FlakyIntrospector(tokens)
    config = ValidatorSettings("rs", "rs-secret", max_ttl=60, revocation_events=False, **settings)
    offline = FakeAuthorizationServer().transport()
    validator = Validator(
        config, introspector=introspector, shared_cache=shared_cache, transport=offline, clock=clock
    )
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
    validator, introspector = _validator(clock, {"t": claims()}, cooldown=9)
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


def test_validate_cached_answers_from_the_local_cache_alone(clock: FakeClock) -> None:
    """The thread-safe path: None on a miss, the decision on a hit, re-made on every call."""
    validator, introspector = _validator(clock, {"t": claims(scope="read", exp=int(clock.now) + 5)})
    assert validator.validate_cached("t") is None
    anyio.run(validator.validate, "t")
    cached = validator.validate_cached("t", ["read"])
    assert cached is not None
    assert cached.scopes == {"read"}
    with pytest.raises(InsufficientScope):
        validator.validate_cached("t", ["write"])
    clock.advance(5)
    with pytest.raises(InvalidToken, match="expired"):
        validator.validate_cached("t")
    assert introspector.calls == 1


def test_one_stats_reaches_every_component() -> None:
    """The validator makes one `Stats` and hands it to the cache, client and subscriber."""
    fake = FakeAuthorizationServer()
    settings = ValidatorSettings(
        fake.client_id, fake.client_secret, introspection_url=fake.introspection_url
    )
    validator = Validator(settings, transport=fake.transport())
    assert validator.subscriber is not None
    assert validator.stats is validator.cache.stats
    assert validator.stats is validator.introspector.stats  # type: ignore[attr-defined]
    assert validator.stats is validator.subscriber.stats
    assert validator.subscriber.transport is validator.transport
    assert validator.introspector.transport is validator.transport  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("settings", "events_url"),
    [
        pytest.param(
            {"introspection_url": "https://as.example/oauth2/introspect"},
            "https://as.example/oauth2/events",
            id="beside-the-introspection-endpoint",
        ),
        pytest.param({"issuer": "https://as.example"}, None, id="issuer-discovers-it"),
        pytest.param(
            {"issuer": "https://as.example", "events_url": "https://ev.example/e"},
            "https://ev.example/e",
            id="configured",
        ),
    ],
)
def test_where_revocation_events_come_from(
    settings: dict[str, str], events_url: str | None
) -> None:
    """Events follow the introspection URL, the issuer's metadata, or `events_url`."""
    validator = Validator(
        ValidatorSettings("rs", "s", **settings), transport=FakeAuthorizationServer().transport()
    )
    assert validator.subscriber is not None
    assert validator.subscriber.endpoint == events_url


def test_events_off_and_custom_introspector_without_url_have_no_subscriber() -> None:
    """`revocation_events=False`, or nowhere to follow events from: no subscriber."""
    off = static_validator({})
    assert off.subscriber is None
    assert off.status()["revocation_events"] == {"state": "off"}
    nowhere = Validator(
        ValidatorSettings("rs", "s"),
        introspector=StaticIntrospector(),
        transport=FakeAuthorizationServer().transport(),
    )
    assert nowhere.subscriber is None


def test_exactly_one_of_issuer_or_introspection_url() -> None:
    """Without a custom introspector the validator needs to know where to introspect."""
    with pytest.raises(ValueError, match="exactly one"):
        Validator(ValidatorSettings("rs", "s"), transport=FakeAuthorizationServer().transport())
    with pytest.raises(ValueError, match="not both"):
        ValidatorSettings("rs", "s", issuer="https://a.example", introspection_url="https://a/i")


@pytest.mark.anyio
async def test_start_discovers_best_effort_and_aclose_keeps_a_given_transport(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An AS down at start is logged, not fatal; a transport passed in is not closed."""
    fake = FakeAuthorizationServer()
    fake.failure = "down"
    transport = fake.transport()
    settings = ValidatorSettings(
        fake.client_id, fake.client_secret, issuer=fake.issuer, revocation_events=False
    )
    async with Validator(settings, transport=transport) as validator:
        assert "discovery failed" in caplog.text
        fake.failure = None
        token = fake.issue()
        assert (await validator.validate(token)).active
        await validator.start()  # idempotent
        assert fake.metadata_calls == 1
    assert transport.closed is False


@pytest.mark.anyio
async def test_aclose_closes_the_transport_it_made() -> None:
    """With no transport given the validator makes a pooled one, and closes it."""
    validator = static_validator({})
    own = Validator(ValidatorSettings("rs", "s", issuer="https://as.example"))
    assert isinstance(own.transport, PooledTransport)
    await own.aclose()
    await validator.aclose()
    assert isinstance(validator.transport, HandlerTransport)
    assert validator.transport.closed is False


@pytest.mark.anyio
async def test_loop_thread_refuses_a_validator_already_on_a_loop() -> None:
    """A validator serves one event loop: the WSGI loop thread is refused once ASGI drives it."""
    validator = static_validator({"t": claims()})
    await validator.validate("t")
    with pytest.raises(RuntimeError, match="already runs"):
        validator.loop_thread()


def test_status_is_json_ready_without_secrets(clock: FakeClock) -> None:
    """`status()` shows events, cache and counters, never the client secret."""
    validator, _ = _validator(clock, {"t": claims()})
    anyio.run(validator.validate, "t")
    status = validator.status()
    assert status["cache"] == {"entries": 1, "ttl_cap": None}
    assert status["stats"]["cache_misses"] == 1  # type: ignore[index]
    assert "rs-secret" not in repr(status)
