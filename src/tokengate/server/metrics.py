"""Prometheus metrics of the authorization server, on a per-app registry (no globals).

The hot paths only bump plain integers (`Count.inc`, a `bisect` into histogram buckets): a
custom collector turns them into Prometheus families at scrape time. prometheus-client's own
Counter/Histogram take a lock and walk the buckets in Python on every update, which measured
at several microseconds per request, a visible share of an introspection call. Updates and
scrapes both happen on the event loop thread, so plain integers are consistent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tokengate.core.wire import (
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
    "/openapi.json": "openapi",
}
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Count:
    """A monotonically increasing (or, for gauges, up-and-down) integer."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


@dataclass
class _Series:
    """One endpoint's requests: counts by status and a latency histogram."""

    statuses: dict[int, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0


class ServerMetrics:
    """Counters and latency histograms; `render()` produces the exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.tokens_issued = Count()
        self.introspected_active = Count()
        self.introspected_inactive = Count()
        self.revocations = Count()
        self.cache_hits = Count()
        self.cache_misses = Count()
        self.event_subscribers = Count()
        self.auth_failures: dict[str, Count] = {}
        # Keyed by the request path of each known endpoint (one lookup per request); every
        # other path shares one series, so arbitrary paths cannot grow the map.
        self._series = {path: _Series() for path in ENDPOINTS}
        self._other = _Series()
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Exporter(self))

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        series = self._series.get(path) or self._other
        statuses = series.statuses
        statuses[status] = statuses.get(status, 0) + 1
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        series.total += seconds

    def auth_failed(self, path: str) -> None:
        """Count a failed client authentication at an endpoint."""
        endpoint = ENDPOINTS.get(path, "other")
        self.auth_failures.setdefault(endpoint, Count()).inc()

    def gauge_function(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """A gauge read at scrape time (cache sizes, event positions)."""
        self._gauges.append((name, doc, fn))

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def families(self) -> Iterator[Metric]:
        """Every metric as a Prometheus family."""
        yield _counter("tokengate_tokens_issued", "Access tokens issued", self.tokens_issued)
        intro = CounterMetricFamily(
            "tokengate_introspection_requests", "Introspection answers by result", labels=["result"]
        )
        intro.add_metric(["active"], self.introspected_active.value)
        intro.add_metric(["inactive"], self.introspected_inactive.value)
        yield intro
        yield _counter(
            "tokengate_revocations", "Tokens revoked at the revocation endpoint", self.revocations
        )
        cache = CounterMetricFamily(
            "tokengate_token_cache_lookups", "Token cache lookups", labels=["result"]
        )
        cache.add_metric(["hit"], self.cache_hits.value)
        cache.add_metric(["miss"], self.cache_misses.value)
        yield cache
        failures = CounterMetricFamily(
            "tokengate_client_auth_failures", "Failed client authentications", labels=["endpoint"]
        )
        for endpoint, count in sorted(self.auth_failures.items()):
            failures.add_metric([endpoint], count.value)
        yield failures
        yield GaugeMetricFamily(
            "tokengate_event_subscribers",
            "Open revocation event streams",
            value=self.event_subscribers.value,
        )
        yield from self._http_families()
        for name, doc, fn in self._gauges:
            yield GaugeMetricFamily(name, doc, value=fn())

    def _http_families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tokengate_http_requests",
            "HTTP requests by endpoint and status",
            labels=["endpoint", "status"],
        )
        named = sorted(
            (*((ENDPOINTS[p], s) for p, s in self._series.items()), ("other", self._other))
        )
        for endpoint, series in named:
            for status, count in sorted(series.statuses.items()):
                requests.add_metric([endpoint, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "tokengate_http_request_duration_seconds",
            "Request latency by endpoint",
            labels=["endpoint"],
        )
        for endpoint, data in named:
            if not data.statuses:
                continue
            cumulative, running = [], 0
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), data.buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            latency.add_metric([endpoint], cumulative, data.total)
        yield latency


class _Exporter(Collector):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()


def _counter(name: str, doc: str, count: Count) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=count.value)
