"""Prometheus exposition of the resource-server library's `Stats` (prometheus-client).

`StatsCollector` reads `Stats.snapshot()` at scrape time, so the library itself stays
dependency-free and every field added to `Stats` later is published without a change here:
`Counter` fields become counters, `Histogram` fields histograms, anything else a gauge.
Names are prefixed `tokengate_rs_`. Nothing is registered globally: `metrics_registry`
builds a `CollectorRegistry` per app, and `MetricsApp` serves one as a pure-ASGI endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from tokengate.asgi.send import send_response
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.core.responses import Response
from tokengate.resource.runtime.stats import Counter, Stats
from tokengate.resource.runtime.validator import Validator

PREFIX = "tokengate_rs_"
_BUCKET = re.compile(r"(?P<name>.+)_bucket_le_(?P<le>[^_]+)$")

_HELP = {
    "cache_hits": "Token lookups answered by the local cache.",
    "cache_misses": "Token lookups the local cache could not answer.",
    "cache_evictions": "Cache entries dropped to stay within the size bound.",
    "cache_expirations": "Cache entries dropped because they were no longer fresh.",
    "cache_invalidations": "Cache entries removed by revocation events or explicit eviction.",
    "cache_size": "Entries currently in the local cache.",
    "singleflight_joins": "Lookups that waited for an introspection already in flight.",
    "introspection_calls": "Introspection requests sent to the authorization server.",
    "introspection_failures": "Introspection requests that gave no usable answer.",
    "introspection_latency_seconds": "Time of one introspection request.",
    "circuit_opened": "Times the introspection circuit breaker opened.",
    "circuit_state": "Introspection circuit breaker: 0 closed, 1 open, 2 half-open.",
}


class StatsCollector:
    """A prometheus-client collector publishing a `Stats` snapshot (and the cache size)."""

    def __init__(
        self, stats: Stats, *, cache_size: Callable[[], int] | None = None, prefix: str = PREFIX
    ) -> None:
        self.stats = stats
        self.cache_size = cache_size
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        """One metric family per `Stats` field, read now."""
        snapshot = self.stats.snapshot()
        histograms = {match["name"] for key in snapshot if (match := _BUCKET.fullmatch(key))}
        for key, value in snapshot.items():
            owner = _owner(key, histograms)
            if owner is None:
                yield self._scalar(key, value)
            elif key == f"{owner}_count":  # one family per histogram, where its keys begin
                yield self._histogram(owner, snapshot)
        if self.cache_size is not None:
            yield GaugeMetricFamily(
                self.prefix + "cache_size", _HELP["cache_size"], value=self.cache_size()
            )

    def _scalar(self, name: str, value: float) -> Metric:
        documentation = _HELP.get(name, name.replace("_", " "))
        if isinstance(getattr(self.stats, name, None), Counter):
            base = name.removesuffix("_total")
            return CounterMetricFamily(self.prefix + base, documentation, value=value)
        return GaugeMetricFamily(self.prefix + name, documentation, value=value)

    def _histogram(self, name: str, snapshot: dict[str, float]) -> Metric:
        bounds = [
            (str(float(match["le"])), snapshot[key])  # canonical: "1.0", not "1"
            for key in snapshot
            if (match := _BUCKET.fullmatch(key)) and match["name"] == name
        ]
        count = snapshot.get(f"{name}_count", 0.0)
        return HistogramMetricFamily(
            self.prefix + name,
            _HELP.get(name, name.replace("_", " ")),
            buckets=[*bounds, ("+Inf", count)],
            sum_value=snapshot.get(f"{name}_sum", 0.0),
        )


def _owner(key: str, histograms: set[str]) -> str | None:
    """The histogram a snapshot key belongs to (`_count`, `_sum`, `_bucket_le_X`), if any."""
    for name in histograms:
        if key in (f"{name}_count", f"{name}_sum") or key.startswith(f"{name}_bucket_le_"):
            return name
    return None


def validator_collector(validator: Validator, *, prefix: str = PREFIX) -> StatsCollector:
    """The collector for a validator: its shared `Stats` and its local cache's size."""
    return StatsCollector(validator.stats, cache_size=lambda: len(validator.cache), prefix=prefix)


def metrics_registry(validator: Validator | None = None) -> CollectorRegistry:
    """A fresh registry (no global state), holding `validator`'s collector when given."""
    registry = CollectorRegistry(auto_describe=True)
    if validator is not None:
        registry.register(validator_collector(validator))
    return registry


class MetricsApp:
    """Pure-ASGI endpoint serving `registry` in the format the scraper's `Accept` asks for."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        accept = b",".join(v for k, v in scope["headers"] if k.lower() == b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1"))
        headers = (
            (b"content-type", content_type.encode("latin-1")),
            (b"cache-control", b"no-store"),
        )
        response = Response(200, encoder(self.registry), headers)
        await send_response(send, response, head_only=scope["method"] == "HEAD")
