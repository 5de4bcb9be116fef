"""The reverse proxy itself: one ASGI HTTP request → one upstream request, bodies streamed.

Neither body is ever held whole: the request body is read from `receive` as the upstream
connection asks for it, and the response body is relayed chunk by chunk as it arrives (raw,
so a compressed body stays compressed). Before the response starts, any failure becomes the
gateway's own 502/504 (`upstream.classify`); after it has started, the only honest signal left
is to cut the connection, which the ASGI server does when the app returns mid-body.

While a long or unsized response streams, the client's disconnect is watched so an abandoned
download (or event stream) does not keep the upstream connection busy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
import yarl

from tokengate.asgi.body import ClientDisconnected, body_chunks
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.edge.claims import ClaimHeader, claim_header_keys, render_claim_headers
from tokengate.gateway.headers import downstream_response_headers, upstream_request_headers
from tokengate.gateway.upstream import (
    GatewayError,
    Upstream,
    UpstreamFailure,
    UpstreamRequest,
    UpstreamResponse,
    classify,
)
from tokengate.resource.protocol.claims import TokenClaims

OnUpstream = Callable[[float, GatewayError | None], None]

logger = logging.getLogger("tokengate.gateway")

_SMALL_BODY = 64 * 1024  # bodies up to this size are relayed without a disconnect watcher


class Proxy:
    """ASGI app forwarding every HTTP request to `upstream` through `client`."""

    def __init__(
        self,
        client: Upstream,
        upstream: str,
        *,
        preserve_host: bool = False,
        claim_headers: tuple[ClaimHeader, ...] = (),
        on_upstream: OnUpstream | None = None,
    ) -> None:
        base = yarl.URL(upstream)
        self.client = client
        self.prefix = base.raw_path.rstrip("/").encode("ascii")
        self.authority = base.raw_authority.encode("ascii")
        self.preserve_host = preserve_host
        self.claim_headers = claim_headers
        self.strip = claim_header_keys(claim_headers)
        self.on_upstream = on_upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # not proxied: refuse the handshake (HTTP 403)
                await send({"type": "websocket.close", "code": 1008})
            return
        request = self.build_request(scope, receive)
        started = time.perf_counter()
        try:
            response = await self.client.send(request)
        except ClientDisconnected:
            return
        except Exception as exc:  # every failure before the response is ours to answer
            await self._fail(send, classify(exc), exc, started)
            return
        self._observe(started, None)
        try:
            await self._relay(response, receive, send)
        finally:
            await response.aclose()

    def build_request(self, scope: Scope, receive: Receive) -> UpstreamRequest:
        """The upstream request for an ASGI HTTP scope; its body streams from `receive`."""
        headers = upstream_request_headers(
            scope["headers"],
            client_host=(scope.get("client") or (None,))[0],
            scheme=scope.get("scheme", "http"),
            upstream_authority=self.authority,
            preserve_host=self.preserve_host,
            drop=self.strip,
        )
        claims = scope.get("auth")
        if isinstance(claims, TokenClaims) and self.claim_headers:
            headers += render_claim_headers(claims, self.claim_headers)
        body = body_chunks(receive) if _has_body(scope["headers"]) else None
        return UpstreamRequest(scope["method"], self._target(scope), headers, body)

    def _target(self, scope: Scope) -> bytes:
        # The path as the client sent it: the upstream decodes exactly what the policy decoded.
        path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        return self.prefix + path + (b"?" + query if query else b"")

    async def _relay(self, response: UpstreamResponse, receive: Receive, send: Send) -> None:
        headers = downstream_response_headers(response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            if _is_small(response):
                await _stream_body(response, send)
            else:
                await _stream_watching_disconnect(response, receive, send)
        except UpstreamFailure as exc:
            # Headers are out; returning mid-body makes the server close the connection.
            logger.warning("upstream response broken mid-body: %s", _cause(exc))

    async def _fail(self, send: Send, error: GatewayError, exc: Exception, started: float) -> None:
        self._observe(started, error)
        if error.kind == "internal":
            logger.error("forwarding failed", exc_info=exc)
        else:
            logger.warning("upstream %s: %s", error.kind, _cause(exc))
        status, headers, body = error.render()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _observe(self, started: float, error: GatewayError | None) -> None:
        if self.on_upstream is not None:
            self.on_upstream(time.perf_counter() - started, error)


def _cause(exc: BaseException) -> str:
    """The name of what went wrong (the library's exception under an `UpstreamFailure`)."""
    return type(exc.__cause__ or exc).__name__


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _is_small(response: UpstreamResponse) -> bool:
    for name, value in response.headers:
        if name.lower() == b"content-length":
            return value.isdigit() and int(value) <= _SMALL_BODY
    return False


async def _stream_body(response: UpstreamResponse, send: Send) -> None:
    async for chunk in response.chunks():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _stream_watching_disconnect(
    response: UpstreamResponse, receive: Receive, send: Send
) -> None:
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await _stream_body(response, send)
        group.cancel_scope.cancel()
