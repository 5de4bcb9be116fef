"""Dependency-free counters for the resource-server library.

One `Stats` object is shared by the cache, single-flight, introspection client and validator;
`snapshot()` flattens it into names an exporter (Prometheus or other) can publish as they are.
Counters take a lock so threads (WSGI servers) do not lose increments; gauges are only set.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass, field, fields
from itertools import accumulate

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Counter:
    """A monotonically increasing, thread-safe integer."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def inc(self, amount: int = 1) -> None:
        """Add `amount` (default 1)."""
        with self._lock:
            self._value += amount

    @property
    def value(self) -> int:
        """The current count."""
        return self._value

    def __repr__(self) -> str:
        return f"Counter({self._value})"


class Gauge:
    """A value that goes up and down (a state code, a configured limit)."""

    __slots__ = ("_value",)

    def __init__(self, value: float = 0) -> None:
        self._value = value

    def set(self, value: float) -> None:
        """Replace the value (a single store: atomic under the GIL)."""
        self._value = value

    @property
    def value(self) -> float:
        """The current value."""
        return self._value

    def __repr__(self) -> str:
        return f"Gauge({self._value})"


class Histogram:
    """Latency buckets in seconds, Prometheus style (`le` upper bounds, cumulative in
    `cumulative()`); an observation lands in one bucket, found by bisection."""

    __slots__ = ("_lock", "bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._lock = threading.Lock()
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # per bucket; the last one is above every bound
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Record one observation."""
        with self._lock:
            self.count += 1
            self.sum += seconds
            self.buckets[bisect_left(self.bounds, seconds)] += 1

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, in the order of `bounds`."""
        return list(accumulate(self.buckets[:-1]))


@dataclass(slots=True)
class Stats:
    """Everything the library counts; each field's name is its metric name."""

    cache_hits: Counter = field(default_factory=Counter)
    cache_misses: Counter = field(default_factory=Counter)
    cache_evictions: Counter = field(default_factory=Counter)
    cache_expirations: Counter = field(default_factory=Counter)
    cache_invalidations: Counter = field(default_factory=Counter)
    shared_cache_hits: Counter = field(default_factory=Counter)
    shared_cache_misses: Counter = field(default_factory=Counter)
    shared_cache_errors: Counter = field(default_factory=Counter)
    singleflight_joins: Counter = field(default_factory=Counter)
    introspection_calls: Counter = field(default_factory=Counter)
    introspection_failures: Counter = field(default_factory=Counter)
    introspection_retries: Counter = field(default_factory=Counter)
    circuit_opened: Counter = field(default_factory=Counter)
    # 0 closed, 1 open, 2 half-open (`resilience.STATE_CODES`).
    circuit_state: Gauge = field(default_factory=Gauge)
    introspection_latency_seconds: Histogram = field(default_factory=Histogram)
    # -1 when cache lifetimes are uncapped, else the cap in seconds (`Validator.set_ttl_cap`).
    cache_ttl_cap_seconds: Gauge = field(default_factory=lambda: Gauge(-1))
    # Revocation events (`RevocationSubscriber`); state codes are in `subscriber.STATE_CODES`.
    revocation_stream_state: Gauge = field(default_factory=Gauge)
    revocation_stream_position: Gauge = field(default_factory=Gauge)
    revocation_stream_reconnects: Counter = field(default_factory=Counter)
    revocation_events_applied: Counter = field(default_factory=Counter)
    revocation_lag_seconds: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))

    def snapshot(self) -> dict[str, float]:
        """Flat name → value: counters, gauges, and `_count`/`_sum`/`_bucket_le_X` per histogram."""
        out: dict[str, float] = {}
        for item in fields(self):
            metric = getattr(self, item.name)
            if isinstance(metric, Counter | Gauge):
                out[item.name] = metric.value
            else:
                out.update(_histogram(item.name, metric))
        return out


def _histogram(name: str, histogram: Histogram) -> dict[str, float]:
    out: dict[str, float] = {f"{name}_count": histogram.count, f"{name}_sum": histogram.sum}
    for bound, count in zip(histogram.bounds, histogram.cumulative(), strict=True):
        out[f"{name}_bucket_le_{bound:g}"] = count
    return out
