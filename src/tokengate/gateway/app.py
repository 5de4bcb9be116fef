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

from tokengate.asgi.lifespan import serve_lifespan
from tokengate.asgi.send import send_response
from tokengate.asgi.types import ASGIApp, Receive, Scope, Send
from tokengate.core.responses import Response
from tokengate.edge.target import ambiguous_target
from tokengate.gateway.client import PooledUpstream
from tokengate.gateway.metrics import GatewayMetrics, MeasuredApp
from tokengate.gateway.proxy import Proxy
from tokengate.gateway.settings import HEALTH_PATH, RESERVED_PREFIX, GatewaySettings
from tokengate.gateway.upstream import Upstream
from tokengate.resource.adapters import require_validator
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.metrics import MetricsApp, metrics_registry
from tokengate.resource.runtime.tls import client_context
from tokengate.resource.runtime.validator import Validator

logger = logging.getLogger("tokengate.gateway")

_JSON = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))
_OK = Response(200, b'{"status":"ok"}', _JSON)
_NOT_FOUND = Response(
    404, b'{"error":"not_found","error_description":"reserved for the gateway"}', _JSON
)
_AMBIGUOUS = Response(
    400,
    b'{"error":"invalid_request","error_description":'
    b'"dot segments, encoded slashes and backslashes are not accepted in the path"}',
    _JSON,
)


class Gateway:
    """ASGI entry point; owns the upstream client and (in introspect mode) the validator."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        validator: Validator | None = None,
        client: Upstream | None = None,
        background: Sequence[AbstractAsyncContextManager[object]] = (),
    ) -> None:
        if (settings.mode == "introspect") != (validator is not None):
            raise ValueError("introspect mode needs a validator, bypass mode none")
        if validator is not None:
            require_validator(validator, "the gateway")
        self.settings = settings
        self.validator = validator
        self.background = background
        self.client = client or PooledUpstream(
            settings.upstream, settings.timeouts, settings.pool, client_context(settings.ca_file)
        )
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
            await send_response(send, _AMBIGUOUS)
        elif scope["path"].startswith(RESERVED_PREFIX):
            await self._reserved(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def startup(self) -> None:
        """Start the validator (revocation events, endpoint discovery) and background tasks."""
        if self.validator is not None:
            await self.validator.start()
            self._exit.push_async_callback(self.validator.aclose)
        self._exit.push_async_callback(self.client.aclose)
        for task in self.background:
            await self._exit.enter_async_context(task)

    async def shutdown(self) -> None:
        """Stop background tasks, close the validator and the upstream pool."""
        await self._exit.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.startup, self.shutdown, logger)

    async def _reserved(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == self.settings.metrics_path:
            await self.metrics_app(scope, receive, send)
            return
        await send_response(send, _OK if path == HEALTH_PATH else _NOT_FOUND)


def create_gateway(
    settings: GatewaySettings,
    *,
    validator: Validator | None = None,
    client: Upstream | None = None,
    background: Sequence[AbstractAsyncContextManager[object]] = (),
) -> Gateway:
    """The gateway app; `client` replaces the pooled aiohttp upstream (tests)."""
    return Gateway(settings, validator=validator, client=client, background=background)
