"""The validator: local cache → single-flight → shared cache → introspection → decision.

One object per resource server, built from `ValidatorSettings`; it makes and owns every part
(the counters, the cache, the HTTP transport, the introspection client, the revocation-event
subscriber) and runs on one asyncio event loop. Every adapter drives this one runtime: ASGI
and FastAPI from their own loop, WSGI from a loop thread (`adapters.wsgi`), the gateway too.

A failed introspection with nothing cached becomes `ServiceUnavailable` (503 + Retry-After):
never a 401, which would make clients throw away a good token. Revocation events evict from
every cache layer (`evict_token_hash`, `evict_client`) and cap lifetimes while the feed is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from tokengate.core.credentials import hash_value
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.decision import authorize
from tokengate.resource.protocol.dpop import check_proof, replay_key
from tokengate.resource.protocol.errors import (
    DPOP,
    BearerError,
    IntrospectionError,
    InvalidDPoPProof,
    ServiceUnavailable,
)
from tokengate.resource.protocol.resilience import CircuitBreaker
from tokengate.resource.protocol.resolver import Presented
from tokengate.resource.protocol.revocations import events_url_from_introspection
from tokengate.resource.protocol.rfc7662 import ClientCredentials
from tokengate.resource.runtime.cache import CachedClaims, MemoryTokenCache, SharedTokenCache
from tokengate.resource.runtime.client import IntrospectionClient
from tokengate.resource.runtime.http import HttpTransport
from tokengate.resource.runtime.loop_thread import LoopThread
from tokengate.resource.runtime.replay import MemoryReplayStore, ReplayStore
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.singleflight import SingleFlight
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.runtime.subscriber import RevocationSubscriber
from tokengate.resource.runtime.tls import client_context
from tokengate.resource.runtime.transport import PooledTransport

if TYPE_CHECKING:
    from tokengate.resource.runtime.signed import SignedResponses

logger = logging.getLogger("tokengate.resource")
Clock = Callable[[], float]


class Introspector(Protocol):
    """Anything that answers RFC 7662 questions (the HTTP client, or a test's table)."""

    async def introspect(self, token: str) -> TokenClaims:
        """RFC 7662 claims for `token`; raise `IntrospectionError` when there is no answer."""
        ...


def unavailable(error: IntrospectionError, default_retry_after: int) -> ServiceUnavailable:
    """The 503 to send when introspection failed and nothing was cached."""
    hint = error.retry_after
    retry_after = default_retry_after if hint is None else max(1, math.ceil(hint))
    return ServiceUnavailable("the token cannot be checked right now", retry_after=retry_after)


class Validator:
    """Validates bearer tokens for every adapter; built by `create_validator(settings)`."""

    def __init__(
        self,
        settings: ValidatorSettings,
        *,
        introspector: Introspector | None = None,
        shared_cache: SharedTokenCache | None = None,
        transport: HttpTransport | None = None,
        replay_store: ReplayStore | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.algs = settings.dpop.algs  # the `DPoP` challenge's `algs` (RFC 9449 §7.1)
        self.replay = replay_store or MemoryReplayStore(
            max_entries=settings.dpop_replay_entries, clock=clock
        )
        self.stats = Stats()
        self.cache = MemoryTokenCache(
            stats=self.stats,
            max_entries=settings.max_entries,
            max_ttl=settings.max_ttl,
            negative_ttl=settings.negative_ttl,
            clock=clock,
        )
        self.shared_cache = shared_cache
        self._clock = clock
        self._flight = SingleFlight[TokenClaims](self.stats.singleflight_joins)
        self._evictions = 0  # bumped by every eviction; see `_fetch`
        self._owns_transport = transport is None
        self.transport = transport if transport is not None else self._transport()
        self.introspector = introspector or self._client()
        self.subscriber = self._subscriber() if settings.revocation_events else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None
        self._thread_lock = threading.Lock()

    def _transport(self) -> PooledTransport:
        """The default transport, trusting `settings.ca_file` (a `ValueError` if unusable)."""
        return PooledTransport(ssl_context=client_context(self.settings.ca_file))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start following revocation events and look the introspection endpoint up (best
        effort: the server may be down; every request retries). Idempotent."""
        self._ensure_started()
        client = self.introspector
        if isinstance(client, IntrospectionClient) and client.endpoint is None:
            try:
                await client.discover()
            except IntrospectionError as exc:
                logger.warning("introspection endpoint discovery failed, will retry: %s", exc)

    async def aclose(self) -> None:
        """Stop following events and close the connections this validator opened."""
        if self.subscriber is not None:
            await self.subscriber.aclose()
        self._loop = None
        if self._owns_transport:
            await self.transport.aclose()

    async def __aenter__(self) -> Validator:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def loop_thread(self) -> LoopThread:
        """This validator's own event loop in a daemon thread, started once: how thread-based
        adapters (WSGI) drive it. A validator serves one loop, so it refuses if another one
        already drives it."""
        with self._thread_lock:
            if self._thread is None:
                if self._loop is not None:
                    raise RuntimeError("this Validator already runs on an event loop")
                thread = LoopThread()
                thread.run(self.start(), timeout=self.settings.timeouts.total + 1.0)
                self._thread = thread
            return self._thread

    def close_loop_thread(self) -> None:
        """Close this validator on its loop thread, then stop the thread."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.run(self.aclose(), timeout=5.0)
            thread.stop()

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        if self.subscriber is not None:
            self.subscriber.start()

    # -- validation ------------------------------------------------------------------------

    async def validate(self, token: str, required_scopes: Iterable[str] = ()) -> TokenClaims:
        """Claims of a token that grants `required_scopes`; raises a `BearerError` otherwise."""
        return self.decide(await self.lookup(token), required_scopes)

    def validate_cached(
        self, token: str, required_scopes: Iterable[str] = ()
    ) -> TokenClaims | None:
        """`validate` from the local cache alone (any thread, no I/O); None on a miss, which
        the caller follows with `validate` (so the miss is counted there, once)."""
        cached = self.cache.get(hash_value(token), count_miss=False)
        return None if cached is None else self.decide(cached, required_scopes)

    def decide(
        self, claims: TokenClaims, required_scopes: Iterable[str] = (), jkt: str | None = None
    ) -> TokenClaims:
        """RFC 7662 §4, RFC 6750 §3.1 and RFC 9449 §7 for these claims, now (`jkt`: the key
        of the verified DPoP proof; None for a bearer token, which must then not be bound)."""
        now = self._clock()
        return authorize(
            claims,
            required_scopes=required_scopes,
            now=now,
            audience=self.settings.audience,
            jkt=jkt,
        )

    async def validate_dpop(
        self, presented: Presented, *, method: str, url: str, required_scopes: Iterable[str] = ()
    ) -> TokenClaims:
        """`validate` for a token presented with a DPoP proof (RFC 9449 §4.3, §7.1): the proof
        checked for this request on every call, cache hit or not, then its key against the
        token's `cnf.jkt`, then its `jti` against replay. Errors carry the `DPoP` challenge."""
        try:
            proof = check_proof(
                presented, method=method, url=url, now=self._clock(), policy=self.settings.dpop
            )
            claims = self.decide(await self.lookup(presented.token), required_scopes, proof.jkt)
            await self._first_use(replay_key(proof), proof.replay_until)
        except BearerError as error:
            error.scheme = DPOP
            raise
        return claims

    async def lookup(self, token: str) -> TokenClaims:
        """What the authorization server says about `token`, from cache when possible."""
        if self._loop is None:
            self._ensure_started()
        token_hash = hash_value(token)
        cached = self.cache.get(token_hash)
        if cached is not None:
            return cached
        try:
            return await self._flight.do(token_hash, lambda: self._fetch(token, token_hash))
        except IntrospectionError as exc:
            raise unavailable(exc, self.settings.retry_after) from exc

    async def _first_use(self, key: str, until: float) -> None:
        try:
            fresh = await self.replay.first_use(key, until)
        except Exception as exc:  # a full or unreachable store must not let a replay through
            logger.warning("DPoP replay store failed: %s", type(exc).__name__)
            raise ServiceUnavailable(
                "the DPoP proof cannot be checked right now", retry_after=1
            ) from None
        if not fresh:
            raise InvalidDPoPProof("the DPoP proof was already used")

    # -- what revocation events drive ------------------------------------------------------

    async def evict_token_hash(self, token_hash: str) -> bool:
        """Forget a token everywhere (a revocation event carries its SHA-256 hex)."""
        self._evictions += 1
        found = self.cache.evict_token_hash(token_hash)
        if self.shared_cache is not None:
            found = await self.shared_cache.evict_token_hash(token_hash) or found
        return found

    async def evict_client(self, client_id: str) -> int:
        """Forget every token of a client everywhere; returns the local count."""
        self._evictions += 1
        count = self.cache.evict_client(client_id)
        if self.shared_cache is not None:
            await self.shared_cache.evict_client(client_id)
        return count

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap every cache entry's life, e.g. while revocation events cannot be received."""
        self.cache.set_ttl_cap(seconds)
        self.stats.cache_ttl_cap_seconds.set(-1 if seconds is None else seconds)
        if self.shared_cache is not None:
            self.shared_cache.set_ttl_cap(seconds)

    def status(self) -> dict[str, object]:
        """A JSON-ready summary for status pages (no secrets)."""
        events = {"state": "off"} if self.subscriber is None else self.subscriber.status()
        cache = {"entries": len(self.cache), "ttl_cap": self.cache.ttl_cap}
        return {"revocation_events": events, "cache": cache, "stats": self.stats.snapshot()}

    # -- internals -------------------------------------------------------------------------

    async def _fetch(self, token: str, token_hash: str) -> TokenClaims:
        # An answer that was in flight while an eviction ran may predate that revocation:
        # it serves the request that asked, but is not kept (it could outlive the revocation).
        evictions = self._evictions
        shared = await self._shared_get(token_hash)
        if shared is not None:
            if evictions == self._evictions:
                self.cache.put(token_hash, shared.claims, not_after=shared.fresh_until)
            return shared.claims
        claims = await self.introspector.introspect(token)
        if evictions == self._evictions:
            self.cache.put(token_hash, claims)
            await self._shared_put(token_hash, claims)
        return claims

    async def _shared_get(self, token_hash: str) -> CachedClaims | None:
        if self.shared_cache is None:
            return None
        try:
            async with asyncio.timeout(self.settings.shared_cache_timeout):
                found = await self.shared_cache.get(token_hash)
        except Exception as exc:  # a broken shared cache degrades to introspection
            self._shared_failed("read", exc)
            return None
        if found is None:
            self.stats.shared_cache_misses.inc()
            return None
        self.stats.shared_cache_hits.inc()
        return found

    async def _shared_put(self, token_hash: str, claims: TokenClaims) -> None:
        if self.shared_cache is None:
            return
        try:
            async with asyncio.timeout(self.settings.shared_cache_timeout):
                await self.shared_cache.put(token_hash, claims)
        except Exception as exc:  # the answer is still good; only sharing it failed
            self._shared_failed("write", exc)

    def _shared_failed(self, operation: str, exc: Exception) -> None:
        self.stats.shared_cache_errors.inc()
        logger.warning("shared token cache %s failed: %s", operation, type(exc).__name__)

    def _client(self) -> IntrospectionClient:
        s = self.settings
        if (s.issuer is None) == (s.introspection_url is None):
            raise ValueError("give exactly one of issuer or introspection_url")
        return IntrospectionClient(
            self.transport,
            ClientCredentials(s.client_id, s.client_secret),
            stats=self.stats,
            endpoint=s.introspection_url,
            issuer=s.issuer,
            timeouts=s.timeouts,
            retry=s.retry,
            breaker=CircuitBreaker(failure_threshold=s.failure_threshold, cooldown=s.cooldown),
            allow_insecure=s.allow_insecure,
            signed=self._signed(),
        )

    def _signed(self) -> SignedResponses | None:
        """RFC 9701 verification, when asked for (joserfc is loaded only then)."""
        s = self.settings
        if not s.signed_introspection:
            return None
        assert s.issuer is not None  # `ValidatorSettings` checks it
        from tokengate.resource.runtime.signed import SignedResponses  # noqa: PLC0415 (joserfc)

        return SignedResponses(s.issuer, s.client_id, s.jwks_url, clock=self._clock)

    def _subscriber(self) -> RevocationSubscriber | None:
        s = self.settings
        events_url = s.events_url
        if events_url is None and s.issuer is None:
            if s.introspection_url is None:
                return None  # a custom introspector with nowhere to follow events from
            events_url = events_url_from_introspection(s.introspection_url)
        return RevocationSubscriber(
            self,
            self.transport,
            ClientCredentials(s.client_id, s.client_secret),
            endpoint=events_url,
            issuer=None if events_url is not None else s.issuer,
            outage_ttl=s.outage_ttl,
            timeouts=s.stream_timeouts,
            allow_insecure=s.allow_insecure,
        )


def create_validator(
    settings: ValidatorSettings,
    *,
    shared_cache: SharedTokenCache | None = None,
    transport: HttpTransport | None = None,
    replay_store: ReplayStore | None = None,
) -> Validator:
    """The validator every adapter takes: `TokenGateMiddleware(app, create_validator(...))`."""
    return Validator(
        settings, shared_cache=shared_cache, transport=transport, replay_store=replay_store
    )
