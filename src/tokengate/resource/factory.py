"""Build a validator (and its revocation-event subscriber) from settings, sharing one `Stats`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import httpx

from tokengate.resource.cache import MemoryTokenCache, SharedTokenCache
from tokengate.resource.introspection import (
    DEFAULT_TIMEOUTS,
    IntrospectionClient,
    SyncIntrospectionClient,
    Timeouts,
)
from tokengate.resource.resilience import DEFAULT_RETRY, CircuitBreaker, RetryPolicy
from tokengate.resource.revocations import events_url_from_introspection
from tokengate.resource.rfc7662 import ClientCredentials
from tokengate.resource.stats import Stats
from tokengate.resource.subscriber import DEFAULT_OUTAGE_TTL, RevocationSubscriber
from tokengate.resource.validator import SyncValidator, Validator


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    """Where and how to introspect, and how long answers may be cached."""

    client_id: str
    client_secret: str = field(repr=False)
    introspection_url: str | None = None
    issuer: str | None = None
    max_entries: int = 10_000
    max_ttl: float = 300.0
    negative_ttl: float = 0.0
    audience: str | None = None
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    retry: RetryPolicy = DEFAULT_RETRY
    failure_threshold: int = 5
    cooldown: float = 5.0
    allow_insecure: bool = False


def create_validator(
    settings: ValidatorSettings,
    *,
    shared_cache: SharedTokenCache | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    stats: Stats | None = None,
) -> Validator:
    """An async `Validator` over an `IntrospectionClient` (explicit URL or RFC 8414 issuer)."""
    stats = stats if stats is not None else Stats()
    client = IntrospectionClient(**_client_options(settings, stats), transport=transport)
    return Validator(
        client,
        cache=_cache(settings, stats),
        shared_cache=shared_cache,
        audience=settings.audience,
        retry_after=_retry_after(settings),
        stats=stats,
    )


def create_sync_validator(
    settings: ValidatorSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    stats: Stats | None = None,
) -> SyncValidator:
    """A `SyncValidator` (WSGI) over a `SyncIntrospectionClient`."""
    stats = stats if stats is not None else Stats()
    client = SyncIntrospectionClient(**_client_options(settings, stats), transport=transport)
    return SyncValidator(
        client,
        cache=_cache(settings, stats),
        audience=settings.audience,
        retry_after=_retry_after(settings),
        stats=stats,
    )


def create_subscriber(
    validator: Validator,
    settings: ValidatorSettings,
    *,
    outage_ttl: float = DEFAULT_OUTAGE_TTL,
    events_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RevocationSubscriber:
    """A subscriber to `validator`'s authorization server: `events_url`, else RFC 8414 metadata
    of the issuer, else the introspection URL with `/oauth2/events` for `/oauth2/introspect`."""
    if events_url is None and settings.issuer is None:
        if settings.introspection_url is None:
            raise ValueError("give an issuer or an introspection URL")
        events_url = events_url_from_introspection(settings.introspection_url)
    return RevocationSubscriber(
        validator,
        ClientCredentials(settings.client_id, settings.client_secret),
        endpoint=events_url,
        issuer=None if events_url is not None else settings.issuer,
        outage_ttl=outage_ttl,
        transport=transport,
        allow_insecure=settings.allow_insecure,
    )


class _ClientOptions(TypedDict):
    credentials: ClientCredentials
    endpoint: str | None
    issuer: str | None
    timeouts: Timeouts
    retry: RetryPolicy
    breaker: CircuitBreaker
    stats: Stats
    allow_insecure: bool


def _client_options(settings: ValidatorSettings, stats: Stats) -> _ClientOptions:
    breaker = CircuitBreaker(
        failure_threshold=settings.failure_threshold, cooldown=settings.cooldown, stats=stats
    )
    return {
        "credentials": ClientCredentials(settings.client_id, settings.client_secret),
        "endpoint": settings.introspection_url,
        "issuer": settings.issuer,
        "timeouts": settings.timeouts,
        "retry": settings.retry,
        "breaker": breaker,
        "stats": stats,
        "allow_insecure": settings.allow_insecure,
    }


def _cache(settings: ValidatorSettings, stats: Stats) -> MemoryTokenCache:
    return MemoryTokenCache(
        max_entries=settings.max_entries,
        max_ttl=settings.max_ttl,
        negative_ttl=settings.negative_ttl,
        stats=stats,
    )


def _retry_after(settings: ValidatorSettings) -> int:
    return max(1, round(settings.cooldown))
