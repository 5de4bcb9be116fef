"""The gateway as one ASGI app: `create_gateway(settings, validator=...)`.

Layers, outermost first: lifespan and the reserved `/_tokengate/` prefix (health, metrics;
never forwarded), request metrics, then in `introspect` mode the resource-server library's own
`TokenGateMiddleware` (same token resolution, policy, cache, single-flight and 401/403/400/503
rendering as any tokengate resource server), then the `Proxy`, which strips client-sent claim
headers from every request and adds the validated claims (`scope["auth"]`) as fresh ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import httpx

from tokengate.gateway.metrics import GatewayMetrics, MeasuredApp
from tokengate.gateway.proxy import Proxy
from tokengate.gateway.settings import HEALTH_PATH, RESERVED_PREFIX, GatewaySettings
from tokengate.gateway.target import ambiguous_target
from tokengate.gateway.upstream import upstream_client
from tokengate.resource.asgi import ASGIApp, Receive, Scope, Send, TokenGateMiddleware
from tokengate.resource.errors import IntrospectionError
from tokengate.resource.introspection import IntrospectionClient
from tokengate.resource.metrics import MetricsApp, metrics_registry
from tokengate.resource.validator import Validator

logger = logging.getLogger("tokengate.gateway")

_OK = b'{"status":"ok"}'
_NOT_FOUND = b'{"error":"not_found","error_description":"reserved for the gateway"}'
_AMBIGUOUS = (
    b'{"error":"invalid_request","error_description":'
    b'"dot segments, encoded slashes and backslashes are not accepted in the path"}'
)


class Gateway:
    """ASGI entry point; owns the upstream client and (in introspect mode) the validator."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        validator: Validator | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        background: Sequence[AbstractAsyncContextManager[object]] = (),
    ) -> None:
        if (settings.mode == "introspect") != (validator is not None):
            raise ValueError("introspect mode needs a validator, bypass mode none")
        self.settings = settings
        self.validator = validator
        self.background = background
        self.client = upstream_client(settings.timeouts, settings.pool, transport)
        self.registry = metrics_registry(validator)
        self.metrics = GatewayMetrics(self.registry)
        self.metrics_app = MetricsApp(self.registry)
        self.app = MeasuredApp(self._pipeline(), self.metrics)
        self._exit = contextlib.AsyncExitStack()

    def _pipeline(self) -> ASGIApp:
        s = self.settings
        proxy = Proxy(
            self.client,
            s.upstream,
            preserve_host=s.preserve_host,
            claim_headers=s.claim_headers if self.validator is not None else (),
            on_upstream=self.metrics.observe_upstream,
        )
        if self.validator is None:
            return proxy
        return TokenGateMiddleware(
            proxy, self.validator, policy=s.policy, token_header=s.token_header, realm=s.realm
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            await self.app(scope, receive, send)
        elif ambiguous_target(scope.get("raw_path") or scope["path"].encode("utf-8")):
            await _json(send, 400, _AMBIGUOUS)
        elif scope["path"].startswith(RESERVED_PREFIX):
            await self._reserved(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def startup(self) -> None:
        """Discover the introspection endpoint (best effort) and start background tasks."""
        if self.validator is not None:
            await _warm_up(self.validator)
            self._exit.push_async_callback(self.validator.aclose)
        self._exit.push_async_callback(self.client.aclose)
        for task in self.background:
            await self._exit.enter_async_context(task)

    async def shutdown(self) -> None:
        """Stop background tasks, close the validator and the upstream pool."""
        await self._exit.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("gateway startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _reserved(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == self.settings.metrics_path:
            await self.metrics_app(scope, receive, send)
            return
        status, body = (200, _OK) if path == HEALTH_PATH else (404, _NOT_FOUND)
        await _json(send, status, body)


async def _json(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_gateway(
    settings: GatewaySettings,
    *,
    validator: Validator | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    background: Sequence[AbstractAsyncContextManager[object]] = (),
) -> Gateway:
    """The gateway app; `transport` replaces the upstream connection pool (tests)."""
    return Gateway(settings, validator=validator, transport=transport, background=background)


async def _warm_up(validator: Validator) -> None:
    client = validator.introspector
    if isinstance(client, IntrospectionClient) and client.endpoint is None:
        try:
            await client.discover()
        except IntrospectionError as exc:  # start anyway: discovery is retried per request
            logger.warning("introspection endpoint discovery failed, will retry: %s", exc)
