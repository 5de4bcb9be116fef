"""A lean HTTP/1.1 keep-alive transport for the gateway's `httpx.AsyncClient` (RFC 9112).

httpx's default transport (httpcore's pool over anyio) costs about 1 ms of CPU per request on
the bench machine and falls below 300 requests/s at 32 concurrent requests, as its pool
re-examines every connection and waiting request on each exchange. This transport keeps what
the gateway needs and nothing else: h11 for the protocol (framing, chunked and close-delimited
bodies, HEAD, 1xx), asyncio streams, a LIFO stack of idle connections per origin, a connection
limit, and httpx's four timeouts read from the request (`connect`, `read`, `write`, `pool`).

A pooled connection the upstream closed while idle is detected before reuse; if one dies
anyway as it is reused, an idempotent request without a body is retried once on a new
connection (RFC 9110 §9.2.2: repeating it is harmless). Failures are raised as httpx's
exceptions, so the client sees what the default transport would raise.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import h11
import httpx

Origin = tuple[bytes, bytes, int]
T = TypeVar("T")
_CHUNK = 65536
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class _Connection:
    """One upstream connection: its streams and its h11 state."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False

    def usable(self, now: float, expiry: float) -> bool:
        """Still open, not closed by the peer while idle, not idle for too long."""
        fresh = now - self.idle_since < expiry
        return fresh and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        """Drop the connection (no graceful TLS shutdown: the peer sees EOF or a reset)."""
        self.writer.close()

    async def send(self, request: httpx.Request, timeout: float | None) -> None:
        """Write the request head and stream its body (a bodiless request is one write)."""
        head = h11.Request(
            method=request.method, target=request.url.raw_path, headers=request.headers.raw
        )
        out = self.h11.send(head) or b""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            self.writer.write(out + (self.h11.send(h11.Data(data=chunk)) or b""))
            out = b""
            await self._drain(timeout)
        self.writer.write(out + (self.h11.send(h11.EndOfMessage()) or b""))
        await self._drain(timeout)

    async def receive_head(self, timeout: float | None) -> h11.Response:
        """The final response's head (1xx interim responses are skipped)."""
        while True:
            event = await self._next(timeout)
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("the upstream closed without a response")

    async def body(self, timeout: float | None) -> AsyncIterator[bytes]:
        """The response body's chunks as they arrive."""
        while True:
            event = await self._next(timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    def recycle(self) -> bool:
        """Ready the connection for the next exchange; False when it must be closed."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def _next(self, timeout: float | None) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self._read(timeout))

    async def _read(self, timeout: float | None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(_CHUNK)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("the upstream did not answer in time") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def _drain(self, timeout: float | None) -> None:
        if not self.writer.transport.get_write_buffer_size():
            return  # everything went out at once: nothing to wait for
        try:
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("the upstream did not take the request in time") from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection; closing it returns or drops the connection."""

    def __init__(
        self, transport: UpstreamTransport, origin: Origin, conn: _Connection, timeout: float | None
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._conn: _Connection | None = conn
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._conn is not None, "the body was already closed"
        async for chunk in self._conn.body(self._timeout):
            yield chunk

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport.release(self._origin, conn, reusable=conn.recycle())


class UpstreamTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to upstream origins, at most `limits.max_connections`."""

    def __init__(
        self, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        limits = limits or httpx.Limits()
        unlimited = 1 << 30  # httpx.Limits uses None for "no limit"
        self.max_keepalive = _or(limits.max_keepalive_connections, unlimited)
        self.keepalive_expiry = _or(limits.keepalive_expiry, float("inf"))
        self._slots = asyncio.Semaphore(_or(limits.max_connections, unlimited))
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._ssl = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return its response with the body still unread."""
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin = (request.url.raw_scheme, request.url.raw_host, _port(request.url))
        await self._acquire_slot(timeouts.get("pool"))
        try:
            conn, head = await self._exchange(request, origin, timeouts)
        except BaseException:
            self._slots.release()
            raise
        body = _Body(self, origin, conn, timeouts.get("read"))
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": head.reason}
        return httpx.Response(
            head.status_code, headers=list(head.headers), stream=body, extensions=extensions
        )

    def release(self, origin: Origin, conn: _Connection, *, reusable: bool) -> None:
        """Take a connection back after its exchange, keeping it idle when it can be reused."""
        self._slots.release()
        idle = self._idle.setdefault(origin, deque())
        if reusable and len(idle) < self.max_keepalive:
            conn.idle_since, conn.reused = time.monotonic(), True
            idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def _exchange(
        self, request: httpx.Request, origin: Origin, timeouts: dict[str, float | None]
    ) -> tuple[_Connection, h11.Response]:
        conn = await self._connection(origin, timeouts.get("connect"))
        try:
            await conn.send(request, timeouts.get("write"))
            return conn, await conn.receive_head(timeouts.get("read"))
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            conn.close()
            if not (conn.reused and _replayable(request)):
                raise
        except BaseException:
            conn.close()
            raise
        # The upstream dropped a kept-alive connection as we used it: once more, on a new one.
        conn = await self._open(origin, timeouts.get("connect"))
        try:
            await conn.send(request, timeouts.get("write"))
            return conn, await conn.receive_head(timeouts.get("read"))
        except BaseException:
            conn.close()
            raise

    async def _connection(self, origin: Origin, timeout: float | None) -> _Connection:
        idle, now = self._idle.get(origin), time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have timed out
            if conn.usable(now, self.keepalive_expiry):
                return conn
            conn.close()
        return await self._open(origin, timeout)

    async def _open(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        tls = self._tls() if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host.decode("ascii"), port, ssl=tls, limit=_CHUNK * 4
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connecting to the upstream timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        return _Connection(reader, writer)

    async def _acquire_slot(self, timeout: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: no timer needed
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no upstream connection became free in time") from exc

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _replayable(request: httpx.Request) -> bool:
    """Idempotent (RFC 9110 §9.2.2) and without a body, so sending it twice is harmless."""
    headers = request.headers
    bodiless = "transfer-encoding" not in headers and headers.get("content-length", "0") == "0"
    return request.method in _IDEMPOTENT and bodiless
