"""The runtime's view of HTTP: one small interface, so the client and the subscriber never see
an HTTP library, and tests plug in an in-memory one (`tokengate.resource.testing`).

A transport sends a prepared `HttpRequest` over pooled keep-alive connections and either
returns the whole (small) response or opens a stream of body chunks (the revocation events).
Every attempt carries its own connect and read timeouts; failures are one of three kinds:

    TransportError
    ├── ConnectFailed     no connection (refused, unreachable, connect timed out): retryable
    ├── TimedOut          connected, but the answer did not come in time
    └── BrokenResponse    an answer that is not valid HTTP, or fails its own content coding
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import ClassVar, Protocol

from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """Seconds one attempt may spend connecting (pool wait included) and waiting per read."""

    connect: float
    read: float


class TransportError(Exception):
    """No usable HTTP answer; `retryable` when the request cannot have reached the server."""

    retryable: ClassVar[bool] = False


class ConnectFailed(TransportError):
    """No connection could be made (or none became free in the pool) in time."""

    retryable = True


class TimedOut(TransportError):
    """The server did not answer, or stopped sending, within the read timeout."""


class BrokenResponse(TransportError):
    """The server answered with something that is not a valid HTTP response."""


class StreamResponse(Protocol):
    """An open response whose body arrives over time."""

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def content_type(self) -> str | None:
        """The `Content-Type` header, if any."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; `TimedOut` after `read` seconds of silence."""
        ...


class HttpTransport(Protocol):
    """What the introspection client and the revocation subscriber need of HTTP."""

    async def request(self, request: HttpRequest, timeouts: AttemptTimeouts) -> HttpResponse:
        """Send `request` and read the whole response."""
        ...

    def stream(
        self, request: HttpRequest, timeouts: AttemptTimeouts
    ) -> AbstractAsyncContextManager[StreamResponse]:
        """Send `request` and stream the response body (closed when the context exits)."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...
