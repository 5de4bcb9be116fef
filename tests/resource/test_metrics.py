"""Prometheus exposition of the resource-server `Stats` (per-app registry, no global state)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.support.asgi import lifespan
from tokengate.resource import ValidatorSettings, create_validator
from tokengate.resource.example import create_example_app
from tokengate.resource.metrics import MetricsApp, StatsCollector, metrics_registry
from tokengate.resource.runtime.stats import Gauge, Histogram, Stats
from tokengate.resource.testing import FakeAuthorizationServer, claims, static_validator


def samples(registry: CollectorRegistry) -> dict[str, float]:
    """Sample name (with labels) → value, as a scraper would parse it."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def test_counters_histograms_and_gauges() -> None:
    """Counter fields → *_total, histograms → buckets/+Inf/sum/count, gauges as they are."""
    stats = Stats()
    stats.cache_hits.inc(3)
    stats.introspection_latency_seconds.observe(0.02)
    stats.introspection_latency_seconds.observe(0.3)
    stats.revocation_stream_state.set(3)
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, cache_size=lambda: 7))
    found = samples(registry)
    assert found["tokengate_rs_cache_hits_total"] == 3
    assert found["tokengate_rs_cache_size"] == 7
    assert found["tokengate_rs_revocation_stream_state"] == 3
    assert found["tokengate_rs_cache_ttl_cap_seconds"] == -1
    assert found['tokengate_rs_introspection_latency_seconds_bucket{le="0.025"}'] == 1
    assert found['tokengate_rs_introspection_latency_seconds_bucket{le="1.0"}'] == 2
    assert found['tokengate_rs_introspection_latency_seconds_bucket{le="+Inf"}'] == 2
    assert found["tokengate_rs_introspection_latency_seconds_count"] == 2
    assert found["tokengate_rs_introspection_latency_seconds_sum"] == pytest.approx(0.32)
    assert "tokengate_rs_revocation_lag_seconds_count" in found


def test_every_stats_field_is_published() -> None:
    """Each `Stats` field appears under its own name, so new fields need no exporter change."""
    stats = Stats()
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    names = {family.name for family in registry.collect()}
    for name in stats.snapshot():
        if "_bucket_le_" in name or name.endswith(("_count", "_sum")):
            continue
        assert "tokengate_rs_" + name in names


def test_fields_added_later_are_read_from_the_snapshot() -> None:
    """A Stats subclass with extra gauge and histogram fields is exported without changes."""

    class More(Stats):
        def snapshot(self) -> dict[str, float]:
            lag = Histogram((0.1, 1.0))
            lag.observe(0.5)
            extra = {"queue_depth": Gauge(4).value}
            extra.update({"lag_seconds_count": lag.count, "lag_seconds_sum": lag.sum})
            extra.update({"lag_seconds_bucket_le_0.1": 0, "lag_seconds_bucket_le_1": 1})
            return {**super().snapshot(), **extra}

    registry = CollectorRegistry()
    registry.register(StatsCollector(More()))
    found = samples(registry)
    assert found["tokengate_rs_queue_depth"] == 4
    assert found['tokengate_rs_lag_seconds_bucket{le="1.0"}'] == 1
    assert found['tokengate_rs_lag_seconds_bucket{le="+Inf"}'] == 1


def test_registries_are_per_app() -> None:
    """Two registries over two validators never share a value (no global registry)."""
    first, second = static_validator({}), static_validator({})
    first.stats.cache_hits.inc()
    assert samples(metrics_registry(first))["tokengate_rs_cache_hits_total"] == 1
    assert samples(metrics_registry(second))["tokengate_rs_cache_hits_total"] == 0


@pytest.mark.anyio
async def test_metrics_app_serves_text_and_openmetrics() -> None:
    """The ASGI endpoint serves the text format, or OpenMetrics when the scraper asks for it."""
    validator = static_validator({"tgat_a": claims(scope="read", exp=4_000_000_000)})
    await validator.validate("tgat_a")
    await validator.validate("tgat_a")
    transport = httpx.ASGITransport(app=MetricsApp(metrics_registry(validator)))
    async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
        text = await http.get("/metrics")
        open_metrics = await http.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "tokengate_rs_cache_hits_total 1.0" in text.text
    assert "tokengate_rs_introspection_calls_total" in text.text
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")


@pytest.mark.anyio
async def test_example_resource_server_serves_metrics() -> None:
    """GET /metrics on the example app: an introspection, then a cache hit, both counted."""
    fake = FakeAuthorizationServer()
    settings = ValidatorSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        issuer=fake.issuer,
        revocation_events=False,
    )
    app = create_example_app(create_validator(settings, transport=fake.transport()))
    token = {"X-Access-Token": fake.issue(scope="read")}
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
            for _ in range(2):
                assert (await http.get("/auth-api/hello", headers=token)).status_code == 200
            text = (await http.get("/metrics")).text
    assert "tokengate_rs_introspection_calls_total 1.0" in text
    assert "tokengate_rs_cache_hits_total 1.0" in text
    assert "tokengate_rs_cache_size 1.0" in text
    assert 'tokengate_rs_introspection_latency_seconds_bucket{le="+Inf"} 1.0' in text
