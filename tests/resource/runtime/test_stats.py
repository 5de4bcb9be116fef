"""The dependency-free counters every runtime component shares (`runtime.stats`)."""

from __future__ import annotations

from tokengate.resource.runtime.stats import Stats


def test_stats_snapshot_is_flat_and_exportable() -> None:
    """A snapshot maps metric names to numbers, histogram included."""
    stats = Stats()
    stats.cache_hits.inc()
    stats.introspection_latency_seconds.observe(0.02)
    snapshot = stats.snapshot()
    assert snapshot["cache_hits"] == 1
    assert snapshot["introspection_latency_seconds_count"] == 1
    assert snapshot["introspection_latency_seconds_bucket_le_0.025"] == 1
    assert snapshot["introspection_latency_seconds_bucket_le_0.01"] == 0
    assert all(isinstance(value, int | float) for value in snapshot.values())


def test_histogram_buckets_are_cumulative_at_each_bound() -> None:
    """Prometheus `le` semantics: a value on a bound counts in that bucket and every larger one;
    a value above every bound counts only in the total."""
    stats = Stats()
    latency = stats.introspection_latency_seconds
    for seconds in (0.005, 0.0051, 0.3, 99.0):
        latency.observe(seconds)
    assert latency.cumulative() == [1, 2, 2, 2, 2, 2, 3, 3, 3, 3]
    snapshot = stats.snapshot()
    assert snapshot["introspection_latency_seconds_bucket_le_0.005"] == 1
    assert snapshot["introspection_latency_seconds_bucket_le_5"] == 3
    assert snapshot["introspection_latency_seconds_count"] == 4
