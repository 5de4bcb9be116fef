"""The facade adapters use: local cache → single-flight → shared cache → introspection → decision.

`Validator` (async) and `SyncValidator` (threads, WSGI) share everything but the waiting.
A failed introspection with nothing cached becomes `ServiceUnavailable` (503 + Retry-After):
never a 401, which would make clients throw away a good token. Revocation-event subscribers
use `evict_token_hash`, `evict_client` and `set_ttl_cap`, which reach every cache layer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Protocol

import anyio

from tokengate.core.credentials import hash_value
from tokengate.resource.cache import CachedClaims, Clock, MemoryTokenCache, SharedTokenCache
from tokengate.resource.claims import TokenClaims
from tokengate.resource.decision import authorize
from tokengate.resource.errors import IntrospectionError, ServiceUnavailable
from tokengate.resource.singleflight import SingleFlight, ThreadSingleFlight
from tokengate.resource.stats import Stats

logger = logging.getLogger("tokengate.resource")

DEFAULT_RETRY_AFTER = 5


class Introspector(Protocol):
    """Anything that can introspect a token asynchronously (e.g. `IntrospectionClient`)."""

    async def introspect(self, token: str) -> TokenClaims:
        """RFC 7662 claims for `token`; raise `IntrospectionError` when there is no answer."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class SyncIntrospector(Protocol):
    """Anything that can introspect a token synchronously (e.g. `SyncIntrospectionClient`)."""

    def introspect(self, token: str) -> TokenClaims:
        """RFC 7662 claims for `token`; raise `IntrospectionError` when there is no answer."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def unavailable(error: IntrospectionError, default_retry_after: int) -> ServiceUnavailable:
    """The 503 to send when introspection failed and nothing was cached."""
    hint = error.retry_after
    retry_after = default_retry_after if hint is None else max(1, math.ceil(hint))
    return ServiceUnavailable("the token cannot be checked right now", retry_after=retry_after)


class _ValidatorBase:
    """Cache lookups and decisions shared by both validators; no I/O."""

    def __init__(
        self,
        *,
        cache: MemoryTokenCache | None,
        audience: str | None,
        retry_after: int,
        clock: Clock,
        stats: Stats | None,
    ) -> None:
        if stats is None:
            stats = cache.stats if cache is not None else Stats()
        self.stats = stats
        self.cache = cache if cache is not None else MemoryTokenCache(clock=clock, stats=self.stats)
        self.audience = audience
        self.retry_after = retry_after
        self._clock = clock

    def _decide(self, claims: TokenClaims, required_scopes: Iterable[str]) -> TokenClaims:
        return authorize(
            claims, required_scopes=required_scopes, now=self._clock(), audience=self.audience
        )

    def _unavailable(self, error: IntrospectionError) -> ServiceUnavailable:
        return unavailable(error, self.retry_after)


class Validator(_ValidatorBase):
    """Async validation of bearer tokens for ASGI apps, gateways and FastAPI dependencies."""

    def __init__(
        self,
        introspector: Introspector,
        *,
        cache: MemoryTokenCache | None = None,
        shared_cache: SharedTokenCache | None = None,
        shared_cache_timeout: float = 0.25,
        audience: str | None = None,
        retry_after: int = DEFAULT_RETRY_AFTER,
        clock: Clock = time.time,
        stats: Stats | None = None,
    ) -> None:
        super().__init__(
            cache=cache, audience=audience, retry_after=retry_after, clock=clock, stats=stats
        )
        self.introspector = introspector
        self.shared_cache = shared_cache
        self.shared_cache_timeout = shared_cache_timeout
        self._flight = SingleFlight[TokenClaims](self.stats)
        self._evictions = 0  # bumped by every eviction; see `_fetch`

    async def validate(self, token: str, required_scopes: Iterable[str] = ()) -> TokenClaims:
        """Claims of a token that grants `required_scopes`; raises a `BearerError` otherwise."""
        return self._decide(await self.lookup(token), required_scopes)

    async def lookup(self, token: str) -> TokenClaims:
        """What the authorization server says about `token`, from cache when possible."""
        token_hash = hash_value(token)
        cached = self.cache.get(token_hash)
        if cached is not None:
            return cached
        try:
            return await self._flight.do(token_hash, lambda: self._fetch(token, token_hash))
        except IntrospectionError as exc:
            raise self._unavailable(exc) from exc

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

    async def aclose(self) -> None:
        """Close the introspector's connections."""
        await self.introspector.aclose()

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
            with anyio.fail_after(self.shared_cache_timeout):
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
            with anyio.fail_after(self.shared_cache_timeout):
                await self.shared_cache.put(token_hash, claims)
        except Exception as exc:  # the answer is still good; only sharing it failed
            self._shared_failed("write", exc)

    def _shared_failed(self, operation: str, exc: Exception) -> None:
        self.stats.shared_cache_errors.inc()
        logger.warning("shared token cache %s failed: %s", operation, type(exc).__name__)


class SyncValidator(_ValidatorBase):
    """Blocking validation for WSGI apps; safe to share between threads."""

    def __init__(
        self,
        introspector: SyncIntrospector,
        *,
        cache: MemoryTokenCache | None = None,
        audience: str | None = None,
        retry_after: int = DEFAULT_RETRY_AFTER,
        clock: Clock = time.time,
        stats: Stats | None = None,
    ) -> None:
        super().__init__(
            cache=cache, audience=audience, retry_after=retry_after, clock=clock, stats=stats
        )
        self.introspector = introspector
        self._flight = ThreadSingleFlight[TokenClaims](self.stats)

    def validate(self, token: str, required_scopes: Iterable[str] = ()) -> TokenClaims:
        """Claims of a token that grants `required_scopes`; raises a `BearerError` otherwise."""
        return self._decide(self.lookup(token), required_scopes)

    def lookup(self, token: str) -> TokenClaims:
        """What the authorization server says about `token`, from cache when possible."""
        token_hash = hash_value(token)
        cached = self.cache.get(token_hash)
        if cached is not None:
            return cached
        try:
            return self._flight.do(token_hash, lambda: self._fetch(token, token_hash))
        except IntrospectionError as exc:
            raise self._unavailable(exc) from exc

    def evict_token_hash(self, token_hash: str) -> bool:
        """Forget a token (a revocation event carries its SHA-256 hex)."""
        return self.cache.evict_token_hash(token_hash)

    def evict_client(self, client_id: str) -> int:
        """Forget every token of a client."""
        return self.cache.evict_client(client_id)

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap every cache entry's life."""
        self.cache.set_ttl_cap(seconds)
        self.stats.cache_ttl_cap_seconds.set(-1 if seconds is None else seconds)

    def close(self) -> None:
        """Close the introspector's connections."""
        self.introspector.close()

    def _fetch(self, token: str, token_hash: str) -> TokenClaims:
        claims = self.introspector.introspect(token)
        self.cache.put(token_hash, claims)
        return claims
