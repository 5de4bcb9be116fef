"""The public names of `tokengate.resource`."""

from __future__ import annotations

import tokengate.resource as resource

EXPECTED = {
    "DEFAULT_TOKEN_HEADER",
    "BearerError",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientCredentials",
    "DiscoveryError",
    "ErrorResponse",
    "InsufficientScope",
    "IntrospectionClient",
    "IntrospectionError",
    "IntrospectionUnavailable",
    "Introspector",
    "InvalidIntrospectionResponse",
    "InvalidRequest",
    "InvalidToken",
    "MemoryTokenCache",
    "MissingToken",
    "Policy",
    "Requirement",
    "RetryPolicy",
    "RevocationSubscriber",
    "Rule",
    "ServiceUnavailable",
    "SharedTokenCache",
    "SingleFlight",
    "Stats",
    "StreamTimeouts",
    "SyncIntrospectionClient",
    "SyncIntrospector",
    "SyncValidator",
    "ThreadSingleFlight",
    "Timeouts",
    "TokenClaims",
    "TokenGateMiddleware",
    "TokenGateWSGIMiddleware",
    "Validator",
    "ValidatorSettings",
    "authorize",
    "create_subscriber",
    "create_sync_validator",
    "create_validator",
    "fresh_until",
    "parse_claims",
    "render_error",
    "resolve_token",
}


def test_public_names_are_guarded() -> None:
    """`__all__` changes only on purpose, and every listed name exists."""
    assert set(resource.__all__) == EXPECTED
    assert resource.__all__ == sorted(resource.__all__, key=lambda n: (not n.isupper(), n))
    for name in resource.__all__:
        assert getattr(resource, name) is not None


def test_stats_snapshot_is_flat_and_exportable() -> None:
    """A snapshot maps metric names to numbers, histogram included."""
    stats = resource.Stats()
    stats.cache_hits.inc()
    stats.introspection_latency_seconds.observe(0.02)
    snapshot = stats.snapshot()
    assert snapshot["cache_hits"] == 1
    assert snapshot["introspection_latency_seconds_count"] == 1
    assert snapshot["introspection_latency_seconds_bucket_le_0.025"] == 1
    assert snapshot["introspection_latency_seconds_bucket_le_0.01"] == 0
    assert all(isinstance(value, int | float) for value in snapshot.values())
