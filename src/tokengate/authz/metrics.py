"""The decision service's own numbers (`tokengate_authz_*`), beside the validator's
`tokengate_rs_*` on one per-app registry.

The hot path bumps plain integers (a dict entry per result, a `bisect` into the latency
buckets); a collector builds the Prometheus families at scrape time. prometheus-client's
Counter and Histogram take a lock on every update, several microseconds per decision. Updates
and scrapes happen on the one event loop, so plain integers are consistent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DecisionMetrics:
    """Decisions by result and their latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.results: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.total_seconds = 0.0
        registry.register(self)

    def observe(self, result: str, seconds: float) -> None:
        """Count one decision."""
        results = self.results
        results[result] = results.get(result, 0) + 1
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.total_seconds += seconds

    def collect(self) -> Iterator[Metric]:
        """The families, read now (prometheus-client's collector protocol)."""
        decisions = CounterMetricFamily(
            "tokengate_authz_decisions", "Decisions by result.", labels=["result"]
        )
        for result, count in sorted(self.results.items()):
            decisions.add_metric([result], count)
        yield decisions
        cumulative = list(accumulate(self.buckets))
        bounds = [str(float(b)) for b in BUCKETS] + ["+Inf"]
        yield HistogramMetricFamily(
            "tokengate_authz_decision_seconds",
            "Time to decide.",
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=self.total_seconds,
        )
