"""The runtime's default `HttpTransport`, over aiohttp's pooled client (its HTTP parser is C).

Chosen by measurement (`bench/rs_overhead.py`, `bench/http_clients.py`):
on the introspection pattern (small form POST, small JSON answer, keep-alive) aiohttp costs
a fraction of httpx's client-side CPU per request, which is what a resource server pays on
every cache miss.

The session is made on first use, inside the running loop (aiohttp binds it to that loop).
No cookies are kept, redirects are not followed, proxies from the environment are not used,
a response body larger than `MAX_BODY` is refused (the answers we expect are small), and a
pooled connection that received bytes while idle is closed, never reused (`FreshConnector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
import yarl
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.runtime.http import (
    AttemptTimeouts,
    BrokenResponse,
    ConnectFailed,
    TimedOut,
    TransportError,
)

MAX_BODY = 1024 * 1024
_CHUNK = 64 * 1024


class PooledTransport:
    """Keep-alive HTTP/1.1 connections, at most `max_connections` at once."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive = keepalive
        self.ssl_context = ssl_context  # None: the system's trust store
        self._session: aiohttp.ClientSession | None = None
        # Made once, not per request: parsing a URL and building a timeout are per-call costs.
        self._timeouts: dict[AttemptTimeouts, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}

    async def request(self, request: HttpRequest, timeouts: AttemptTimeouts) -> HttpResponse:
        """Send `request`; the whole answer, or a `TransportError`."""
        try:
            async with self._send(request, timeouts) as response:
                body = await _read(response)
                return HttpResponse(
                    response.status,
                    body,
                    response.headers.get("retry-after"),
                    response.headers.get("content-type"),
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(exc) from exc

    @contextlib.asynccontextmanager
    async def stream(
        self, request: HttpRequest, timeouts: AttemptTimeouts
    ) -> AsyncIterator[_Stream]:
        """Send `request` and hand over the response while its body still arrives."""
        try:
            async with self._send(request, timeouts) as response:
                yield _Stream(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        """Close the pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _send(
        self, request: HttpRequest, timeouts: AttemptTimeouts
    ) -> aiohttp.client._RequestContextManager:
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            if len(self._timeouts) > 64:  # near a deadline every attempt has its own values
                self._timeouts.clear()
            timeout = aiohttp.ClientTimeout(connect=timeouts.connect, sock_read=timeouts.read)
            self._timeouts[timeouts] = timeout
        url = self._urls.get(request.url)
        if url is None:
            if len(self._urls) > 64:
                self._urls.clear()
            url = self._urls[request.url] = yarl.URL(request.url)
        return self._pool().request(
            request.method,
            url,
            headers=dict(request.headers),
            data=request.body or None,
            timeout=timeout,
            allow_redirects=False,
        )

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = FreshConnector(
                limit=self.max_connections,
                keepalive_timeout=self.keepalive,
                ssl=self.ssl_context or True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                raise_for_status=False,
                # Small JSON answers: not worth inviting compression, nor naming ourselves.
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session


class FreshConnector(aiohttp.TCPConnector):
    """aiohttp's pool, never handing out a connection that received bytes while idle.

    RFC 9112 §9.3: bytes a server sends beyond the framing of its answer (an unsolicited or a
    duplicated response) must never become the next request's answer, here the introspection
    answer about another token. aiohttp closes a connection holding unread bytes when it is
    released, but parses bytes arriving while it sits idle and queues them as a response for
    whoever reuses it: such a connection is closed instead (the gateway's pool uses this too).
    """

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        """A pooled connection with nothing unread on it, or a new one."""
        for _ in range(self.limit + 1):  # at most `limit` are pooled, so one try is a new one
            connection = await super().connect(req, traces, timeout)
            protocol = connection.protocol
            if protocol is not None and not protocol.should_close:
                return connection
            connection.close()  # a stale queued response, or bytes no request asked for
        raise aiohttp.ServerDisconnectedError("the server sends bytes nobody asked for")


class _Stream:
    """An aiohttp response seen as a `StreamResponse`."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def content_type(self) -> str | None:
        return self._response.headers.get("content-type")

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(exc) from exc


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, refusing more than `MAX_BODY` bytes."""
    length = response.content_length
    if length is not None and length <= MAX_BODY:
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > MAX_BODY:
            raise BrokenResponse("sent an oversized response")
    return bytes(body)


def _failure(exc: BaseException) -> TransportError:
    """The transport error an aiohttp failure means (see `runtime.http`)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectFailed("timed out connecting")
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        return TimedOut("timed out")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        # A pooled connection the server closed as we reused it is as harmless to retry as a
        # refused one: every request the runtime sends is safe to repeat.
        return ConnectFailed(f"unreachable ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BrokenResponse("sent an undecodable response")
    return BrokenResponse(f"sent no valid response ({type(exc).__name__})")
