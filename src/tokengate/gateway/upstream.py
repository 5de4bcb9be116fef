"""The upstream side: a pooled `httpx.AsyncClient`, and what each failure becomes (RFC 9110 §15.6).

Connection failures and broken responses are 502 Bad Gateway; a timeout (connect, read, write
or waiting for a pooled connection) is 504 Gateway Timeout. Both carry a small JSON body in the
RFC 6749 §5.2 shape the rest of tokengate uses, never the upstream's address or the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from tokengate.gateway.settings import UpstreamPool, UpstreamTimeouts
from tokengate.gateway.transport import UpstreamTransport


@dataclass(frozen=True, slots=True)
class GatewayError:
    """A response the gateway makes up itself."""

    status: int
    error: str
    description: str
    kind: str  # metric label: connect, timeout, protocol, internal

    def render(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body to send."""
        document = {"error": self.error, "error_description": self.description}
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
        ]
        return self.status, headers, body


UNREACHABLE = GatewayError(
    502, "bad_gateway", "the upstream server could not be reached", "connect"
)
BROKEN = GatewayError(502, "bad_gateway", "the upstream server sent no valid response", "protocol")
TIMEOUT = GatewayError(
    504, "gateway_timeout", "the upstream server did not answer in time", "timeout"
)
INTERNAL = GatewayError(502, "bad_gateway", "the request could not be forwarded", "internal")


def classify(exc: Exception) -> GatewayError:
    """The response for an exception raised while sending upstream or awaiting its headers."""
    if isinstance(exc, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(exc, httpx.ConnectError):
        return UNREACHABLE
    if isinstance(exc, httpx.TransportError):
        return BROKEN
    return INTERNAL


def upstream_client(
    timeouts: UpstreamTimeouts,
    pool: UpstreamPool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A keep-alive client that follows no redirects and keeps no cookies.

    The connection pool is `UpstreamTransport` unless `transport` replaces it (tests, or
    httpx's default `httpx.AsyncHTTPTransport`).

    Requests are built as `httpx.Request` and sent with `send`, so the client's default headers
    (`User-Agent`, `Accept-Encoding`, ...) are never added to what the caller sent.
    """
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        timeout=timeouts.as_httpx(),
        transport=transport or UpstreamTransport(pool.as_httpx()),
        follow_redirects=False,
        cookies=no_cookies,
        trust_env=False,
    )
