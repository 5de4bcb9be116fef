"""`PooledUpstream`: the gateway's `Upstream` over aiohttp's keep-alive client (RFC 9112).

aiohttp is what the resource-server runtime already uses, chosen by measurement: its C parser
and pool cost a fraction of httpx's CPU per request and hold up under concurrency
(`bench/gateway_overhead.py`). The session is made on first use, inside the running loop.

What the gateway asks of it: no redirects followed, no cookies kept, no proxy from the
environment, bodies raw (`auto_decompress=False`) and streamed both ways, and no header field
of its own (`skip_auto_headers`; `Host` is the one the gateway computed). Its timeouts are
the gateway's four: `connect` (a new connection), `pool` (waiting for a free one, then
connecting), `read` (the response head, then each gap in the body) and `write`, which aiohttp
lacks: `_Upload` gives each request body chunk `write` seconds to be taken.

Response desync (RFC 9112 §9.3, §6.3): bytes an upstream sends beyond the framing of its
answer (a body on a HEAD response, more than its Content-Length, an unsolicited response) must
never become the next request's response. aiohttp closes a connection that holds unread bytes
when it is released, but bytes arriving while the connection sits idle are parsed and queued as
a response for whoever reuses it; `FreshConnector` (the resource runtime's, shared) closes such
a connection instead of handing it out, and a response not read to its end is released closed.

aiohttp retries an idempotent request once when a kept-alive connection turns out dead, unless
part of its body was already sent (RFC 9112 §9.3.1.1).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import aiohttp
import yarl
from multidict import CIMultiDict

from tokengate.asgi.body import ClientDisconnected
from tokengate.gateway.settings import UpstreamPool, UpstreamTimeouts
from tokengate.gateway.upstream import (
    BROKEN,
    INTERNAL,
    TIMEOUT,
    UNREACHABLE,
    UNSENDABLE,
    GatewayError,
    UpstreamFailure,
    UpstreamRequest,
)
from tokengate.resource.runtime.transport import FreshConnector

_CHUNK = 64 * 1024
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# aiohttp adds these unless told not to (Host too, but the gateway always sends its own).
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class PooledUpstream:
    """Keep-alive HTTP/1.1 connections to one origin, at most `pool.max_connections` at once."""

    def __init__(
        self,
        origin: str,
        timeouts: UpstreamTimeouts,
        pool: UpstreamPool,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = yarl.URL(origin).origin()
        self.ssl_context = ssl_context  # for an https:// upstream; None: the system's CAs
        self.timeouts = timeouts
        self.pool = pool
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.pool + timeouts.connect,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        )
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: UpstreamRequest) -> _Response:
        """Send `request`; its response once the head arrived (`ClientDisconnected` passes)."""
        url = self._url(request.target)
        headers = _wire_headers(request.headers)
        upload = None if request.body is None else _Upload(request.body, self.timeouts.write)
        try:
            async with asyncio.timeout(None) as deadline:
                if upload is not None:  # a stalled write before the head: give up waiting
                    upload.on_stall = lambda: deadline.reschedule(-1)
                response = await self._pool().request(
                    request.method, url, headers=headers, data=upload, allow_redirects=False
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            if upload is not None and upload.disconnected:
                raise ClientDisconnected from exc
            raise UpstreamFailure(failure(exc)) from exc
        finally:
            if upload is not None:
                upload.on_stall = _nothing
        return _Response(response, upload)

    async def aclose(self) -> None:
        """Close the pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _url(self, target: bytes) -> yarl.URL:
        path, _, query = _text(target).partition("?")
        origin = self.origin
        return yarl.URL.build(
            scheme=origin.scheme,
            authority=origin.raw_authority,
            path=path,
            query_string=query,
            encoded=True,  # the target as the client sent it: no quoting, no dot removal
        )

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = FreshConnector(
                limit=self.pool.max_connections,
                keepalive_timeout=self.pool.keepalive_expiry,
                ssl=self.ssl_context or True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=_AUTO_HEADERS,
            )
        return self._session


class _Upload:
    """A request body as aiohttp pulls it; `on_stall` runs when a chunk waits `write` seconds."""

    def __init__(self, chunks: AsyncIterable[bytes], write: float) -> None:
        self.chunks = chunks
        self.write = write
        self.on_stall: Callable[[], object] = _nothing
        self.finished = False
        self.disconnected = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self.chunks:
                # aiohttp asks for the next chunk once this one is in the socket's buffer.
                timer = loop.call_later(self.write, self._stalled)
                try:
                    yield chunk
                finally:
                    timer.cancel()
        except ClientDisconnected:
            self.disconnected = True
            raise
        self.finished = True

    def _stalled(self) -> None:
        self.on_stall()


class _Response:
    """An aiohttp response seen as an `UpstreamResponse`."""

    def __init__(self, response: aiohttp.ClientResponse, upload: _Upload | None) -> None:
        self._response = response
        self._upload = upload
        self._read_to_end = False
        if upload is not None:  # a stalled write after the head: cut the exchange
            upload.on_stall = response.close

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        return self._response.raw_headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamFailure(failure(exc)) from exc
        self._read_to_end = True

    async def aclose(self) -> None:
        upload = self._upload
        if upload is not None:
            upload.on_stall = _nothing
        if self._read_to_end and (upload is None or upload.finished):
            self._response.release()  # aiohttp still closes it if bytes are left over
        else:
            self._response.close()


def failure(exc: BaseException) -> GatewayError:
    """What an aiohttp failure means for the client (timeouts first: aiohttp's are both)."""
    if isinstance(exc, TimeoutError):  # ours (write), connect/pool, and socket read
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS
        return UNREACHABLE
    if isinstance(exc, aiohttp.ClientError):  # dropped, reset, unparseable, cut short
        return BROKEN
    return INTERNAL


def _wire_headers(headers: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    """The fields as aiohttp sends them (it encodes text as UTF-8: identical bytes, or refused)."""
    return CIMultiDict((_text(name), _text(value)) for name, value in headers)


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UpstreamFailure(UNSENDABLE) from None
    if _CONTROL.search(text):  # RFC 9110 §5.5; aiohttp would refuse them with a ValueError
        raise UpstreamFailure(UNSENDABLE)
    return text


def _nothing() -> None:
    """No write is being watched."""
