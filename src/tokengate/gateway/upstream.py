"""The upstream side as the proxy sees it, and what each failure becomes (RFC 9110 §15.6).

`Upstream` is a two-method interface: `send` one request (its body streamed), get the response
with its body still unread. `gateway.client.PooledUpstream` implements it over aiohttp; tests
pass their own. Every failure it raises is an `UpstreamFailure` carrying the gateway's answer:
connection failures and broken responses are 502 Bad Gateway, a timeout (connect, read, write
or waiting for a pooled connection) is 504 Gateway Timeout, a request it cannot put on the wire
(RFC 9110 §5.5) is 400. Each carries a small JSON body in the RFC 6749 §5.2 shape the rest of
tokengate uses, never the upstream's address or the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

RawHeaders = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class GatewayError:
    """A response the gateway makes up itself."""

    status: int
    error: str
    description: str
    kind: str  # metric label: connect, timeout, protocol, refused, internal

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
UNSENDABLE = GatewayError(
    400, "invalid_request", "a header field value is not UTF-8 text without controls", "refused"
)
INTERNAL = GatewayError(502, "bad_gateway", "the request could not be forwarded", "internal")


class UpstreamFailure(Exception):
    """Sending, or reading the response, failed; `error` is what the client gets."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.description)
        self.error = error


def classify(exc: Exception) -> GatewayError:
    """The response for an exception raised while sending upstream or awaiting its headers."""
    return exc.error if isinstance(exc, UpstreamFailure) else INTERNAL


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One request: the origin-form target as sent, the header fields to send exactly, a body."""

    method: str
    target: bytes
    headers: RawHeaders
    body: AsyncIterable[bytes] | None = None


class UpstreamResponse(Protocol):
    """A response whose body has not been read yet."""

    @property
    def status(self) -> int:
        """The status code (1xx interim responses are never handed over)."""

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The header fields as received."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, raw (still compressed if it was), as it arrives; `UpstreamFailure` if cut."""

    async def aclose(self) -> None:
        """Done with it: the connection goes back to the pool only if the exchange ended cleanly."""


class Upstream(Protocol):
    """Where the proxy sends requests."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send `request`; the response once its head arrived, or `UpstreamFailure`."""

    async def aclose(self) -> None:
        """Close every pooled connection."""
