"""The decision service as one ASGI app: `create_authz(settings, validator)`.

Routes: `/decide` (any method; nginx, Traefik, Caddy), `/envoy/<original path>` (Envoy HTTP
`ext_authz`), `/healthz`, `/metrics`; anything else 404. It reads headers only, never a body.
Nothing it answers is a 500: an unexpected failure is logged and denied with 503, so a proxy
that fails closed stays closed. The validator starts and stops with the ASGI lifespan.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from tokengate.asgi.lifespan import serve_lifespan
from tokengate.asgi.send import send_response
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.authz.decide import Decider
from tokengate.authz.metrics import DecisionMetrics
from tokengate.authz.settings import (
    DECIDE_PATH,
    ENVOY_PREFIX,
    HEALTH_PATH,
    METRICS_PATH,
    AuthzSettings,
)
from tokengate.core.responses import Response, json_response
from tokengate.edge.original import (
    AmbiguousOriginal,
    OriginalRequest,
    forward_auth_target,
    from_envoy,
    original,
)
from tokengate.resource.adapters import require_validator
from tokengate.resource.metrics import MetricsApp, metrics_registry
from tokengate.resource.protocol.errors import InvalidRequest, ServiceUnavailable
from tokengate.resource.runtime.validator import Validator

logger = logging.getLogger("tokengate.authz")
MEMO_ENTRIES = 4096
# RFC 3986 §3.3 pchar, and `%`: an escape left after decoding (`%2E` from `%252E`) stays
# visible to the target check instead of being hidden as `%252E`.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_FORWARDED_HOST = b"x-forwarded-host"
_OK = json_response(200, {"status": "ok"})
_NOT_FOUND = json_response(404, {"error": "not_found"})


class Authz:
    """ASGI entry point of `tokengate authz`; owns its validator's lifecycle."""

    def __init__(self, settings: AuthzSettings, validator: Validator) -> None:
        self.settings = settings
        self.validator = require_validator(validator, "the decision service")
        self.decider = Decider(settings, self.validator)
        self.registry = metrics_registry(self.validator)
        self.metrics_app = MetricsApp(self.registry)
        self.metrics = DecisionMetrics(self.registry)
        self._originals: dict[tuple[str, str], OriginalRequest] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, self.validator.start, self.validator.aclose, logger)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path in (DECIDE_PATH, ENVOY_PREFIX) or path.startswith(ENVOY_PREFIX + "/"):
            response = await self._decide(scope)
        elif path == HEALTH_PATH:
            response = _OK
        elif path == METRICS_PATH:
            await self.metrics_app(scope, receive, send)
            return
        else:
            response = _NOT_FOUND
        await send_response(send, response, head_only=scope["method"] == "HEAD")

    async def _decide(self, scope: Scope) -> Response:
        started = time.perf_counter()
        try:
            response, result = await self._answer(scope)
        except Exception:  # fail closed: a proxy must never let a request through on our bug
            logger.exception("decision failed")
            denied = ServiceUnavailable("the request cannot be checked right now", retry_after=1)
            response, result = self.decider.refuse(denied)
        self.metrics.observe(result, time.perf_counter() - started)
        return response

    async def _answer(self, scope: Scope) -> tuple[Response, str]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            original = self._original(scope, headers)
        except AmbiguousOriginal as exc:
            return self.decider.refuse(InvalidRequest(str(exc)))
        # nginx, Traefik and Caddy name the original host in X-Forwarded-Host; Envoy keeps Host.
        host = _FORWARDED_HOST if scope["path"] == DECIDE_PATH else b"host"
        return await self.decider.decide(original, headers, host_header=host)

    def _original(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> OriginalRequest:
        if scope["path"] == DECIDE_PATH:
            return self._parsed(*forward_auth_target(headers))
        raw: bytes | None = scope.get("raw_path")
        if raw is None:  # optional in ASGI: encode the decoded path again, so a `%3F` or `%23`
            # Envoy sent stays part of the path (never a delimiter) and `%2F` stays visible
            raw = quote(scope["path"], safe=_PATH_SAFE).encode("ascii")
        return from_envoy(scope["method"], raw, scope.get("query_string", b""), ENVOY_PREFIX)

    def _parsed(self, method: str, target: str) -> OriginalRequest:
        """`original(method, target)`, memoized: proxies ask about the same few targets.

        Bounded (cleared when full), since targets are chosen by clients; a refusal is not kept.
        """
        key = (method, target)
        found = self._originals.get(key)
        if found is None:
            found = original(method, target)
            if len(self._originals) >= MEMO_ENTRIES:
                self._originals.clear()
            self._originals[key] = found
        return found


def create_authz(settings: AuthzSettings, validator: Validator) -> Authz:
    """The decision service's ASGI app."""
    return Authz(settings, validator)
