"""The gateway's Prometheus metrics (`tokengate_gw_*`), on a registry of its own.

Requests by status code and their duration (until the last body byte), time to the upstream's
response headers, upstream failures by kind (connect, timeout, protocol, internal), and requests
in flight. In `introspect` mode the validator's `tokengate_rs_*` metrics join the same registry.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import CollectorRegistry

from tokengate.asgi.types import ASGIApp, Message, Receive, Scope, Send
from tokengate.gateway.upstream import GatewayError

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The gateway's instruments; `observe_upstream` is the proxy's `on_upstream` hook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "tokengate_gw_requests",
            "Requests answered, by status code.",
            ["code"],
            registry=registry,
        )
        self.duration = Histogram(
            "tokengate_gw_request_duration_seconds",
            "Time from request to last body byte.",
            buckets=BUCKETS,
            registry=registry,
        )
        self.upstream = Histogram(
            "tokengate_gw_upstream_response_seconds",
            "Time until the upstream's headers.",
            buckets=BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "tokengate_gw_upstream_errors",
            "Upstream failures, by kind.",
            ["kind"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "tokengate_gw_requests_in_flight", "Requests being handled.", registry=registry
        )

    def observe_upstream(self, seconds: float, error: GatewayError | None) -> None:
        """Record one upstream exchange (time to headers, or to the failure)."""
        self.upstream.observe(seconds)
        if error is not None:
            self.upstream_errors.labels(error.kind).inc()


class MeasuredApp:
    """Pure-ASGI wrapper counting each HTTP response by status and timing it."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 0

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await app(scope, receive, measured_send)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.duration.observe(time.perf_counter() - started)
            self.metrics.requests.labels(str(status)).inc()
