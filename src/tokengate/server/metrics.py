"""Prometheus metrics of the authorization server, on a per-app registry (no globals).

Children with fixed label values are bound once, so counting on the hot path is an
increment, not a label lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tokengate.core.metadata import (
    EVENTS_PATH,
    INTROSPECT_PATH,
    METADATA_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
)

ENDPOINTS = {
    TOKEN_PATH: "token",
    INTROSPECT_PATH: "introspect",
    REVOKE_PATH: "revoke",
    METADATA_PATH: "metadata",
    EVENTS_PATH: "events",
    "/healthz": "healthz",
    "/metrics": "metrics",
}
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    """Counters and histograms the server updates; `render()` produces the exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "tokengate_http_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self._latency = Histogram(
            "tokengate_http_request_duration_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.tokens_issued = Counter("tokengate_tokens_issued", "Access tokens issued", registry=r)
        introspections = Counter(
            "tokengate_introspection_requests",
            "Introspection answers by result",
            ["result"],
            registry=r,
        )
        self.introspected_active = introspections.labels("active")
        self.introspected_inactive = introspections.labels("inactive")
        self.revocations = Counter(
            "tokengate_revocations", "Tokens revoked at the revocation endpoint", registry=r
        )
        self.auth_failures = Counter(
            "tokengate_client_auth_failures",
            "Failed client authentications",
            ["endpoint"],
            registry=r,
        )
        cache = Counter(
            "tokengate_token_cache_lookups", "Token cache lookups", ["result"], registry=r
        )
        self.cache_hits = cache.labels("hit")
        self.cache_misses = cache.labels("miss")
        self.event_subscribers = Gauge(
            "tokengate_event_subscribers", "Open revocation event streams", registry=r
        )
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (path, status)
        children = self._children.get(key)
        if children is None:
            endpoint = ENDPOINTS.get(path, "other")
            children = (
                self._requests.labels(endpoint, str(status)),
                self._latency.labels(endpoint),
            )
            if endpoint != "other":  # unknown paths are not worth remembering one by one
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def gauge_function(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """A gauge read at scrape time (cache sizes, event positions)."""
        Gauge(name, doc, registry=self.registry).set_function(fn)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
