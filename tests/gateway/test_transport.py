"""The gateway's HTTP/1.1 transport against scripted raw-TCP upstreams on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from tokengate.gateway.transport import UpstreamTransport

pytestmark = pytest.mark.anyio

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Upstream:
    """A loopback TCP server running `script` per connection, counting connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection."""
        self.connections += 1
        try:
            await self.script(reader, writer)
        finally:
            writer.close()


@asynccontextmanager
async def upstream(script: Script) -> AsyncIterator[Upstream]:
    """Serve `script` on a free loopback port."""
    server = Upstream(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


async def head(reader: asyncio.StreamReader) -> bytes:
    """Read one request head (through the blank line)."""
    return await reader.readuntil(b"\r\n\r\n")


def keep_answering(*answers: bytes) -> Script:
    """Answer each request head on the connection with the next of `answers`."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            try:
                await head(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)
            await writer.drain()
        await reader.read()

    return script


async def fetch(
    transport: UpstreamTransport, port: int, method: str = "GET", **options: object
) -> tuple[httpx.Response, bytes]:
    """One request through `transport`; returns the response and its whole body."""
    timeout = httpx.Timeout(2.0, pool=0.2).as_dict()
    request = httpx.Request(
        method, f"http://127.0.0.1:{port}/x", extensions={"timeout": timeout}, **options
    )  # type: ignore[arg-type]
    response = await transport.handle_async_request(request)
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return response, body


async def test_keep_alive_reuses_one_connection() -> None:
    """Three sequential requests travel on one connection."""
    async with upstream(keep_answering(OK, OK, OK)) as server:
        transport = UpstreamTransport()
        for _ in range(3):
            response, body = await fetch(transport, server.port)
            assert (response.status_code, body) == (200, b"ok")
        await transport.aclose()
    assert server.connections == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            id="interim-1xx-skipped",
        ),
        pytest.param(
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"",
            id="no-content",
        ),
    ],
)
async def test_response_framing(answer: bytes, expected: bytes) -> None:
    """Chunked bodies, 1xx interim responses and 204 are framed correctly; the connection stays."""
    async with upstream(keep_answering(answer, OK)) as server:
        transport = UpstreamTransport()
        assert (await fetch(transport, server.port))[1] == expected
        assert (await fetch(transport, server.port))[1] == b"ok"
        await transport.aclose()
    assert server.connections == 1


async def test_close_delimited_body_is_read_to_eof() -> None:
    """Without Content-Length or chunking the body runs to EOF; the connection is not reused."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")

    async with upstream(script) as server:
        transport = UpstreamTransport()
        assert (await fetch(transport, server.port))[1] == b"all of it"
        await fetch(transport, server.port)
        await transport.aclose()
    assert server.connections == 2


async def test_head_response_has_no_body() -> None:
    """A HEAD answer's Content-Length announces a body that is never sent or awaited."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with upstream(keep_answering(answer, OK)) as server:
        transport = UpstreamTransport()
        response, body = await fetch(transport, server.port, "HEAD")
        assert (response.headers["content-length"], body) == ("1000", b"")
        assert (await fetch(transport, server.port))[1] == b"ok"
        await transport.aclose()
    assert server.connections == 1


async def test_request_body_streams_chunked() -> None:
    """An unsized request body goes out chunked, piece by piece."""
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await head(reader))
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(OK)

    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"de"

    async with upstream(script) as server:
        transport = UpstreamTransport()
        await fetch(transport, server.port, "POST", content=parts())
        await transport.aclose()
    assert b"transfer-encoding: chunked" in received[0].lower()
    assert received[1] == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


async def test_idle_connection_closed_by_upstream_is_not_reused() -> None:
    """The upstream closes after answering; the next request opens a new connection."""

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(OK)  # then the connection closes, while the transport holds it idle

    async with upstream(answer_once) as server:
        transport = UpstreamTransport()
        await fetch(transport, server.port)
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert (await fetch(transport, server.port))[1] == b"ok"
        await transport.aclose()
    assert server.connections == 2


def dies_on_second_request() -> Script:
    """Answer the first request, then drop the connection when the second one arrives."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(OK)
        await writer.drain()
        await reader.read(1)  # the next request starts: hang up without answering

    return script


async def test_reused_connection_dying_is_retried_for_idempotent_requests() -> None:
    """A GET on a kept-alive connection the upstream drops is sent again on a new one."""
    async with upstream(dies_on_second_request()) as server:
        transport = UpstreamTransport()
        await fetch(transport, server.port)
        assert (await fetch(transport, server.port))[1] == b"ok"
        await transport.aclose()
    assert server.connections == 2


async def test_reused_connection_dying_is_not_retried_with_a_body() -> None:
    """A POST is never sent twice: the failure surfaces as an httpx transport error."""
    async with upstream(dies_on_second_request()) as server:
        transport = UpstreamTransport()
        await fetch(transport, server.port)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await fetch(transport, server.port, "POST", content=b"once")
        await transport.aclose()


async def test_failures_are_httpx_exceptions() -> None:
    """Refused → ConnectError; silent upstream → ReadTimeout; no free connection → PoolTimeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with upstream(silent) as server:
        port = server.port
        transport = UpstreamTransport(httpx.Limits(max_connections=1))
        timeout = httpx.Timeout(0.5, pool=0.1).as_dict()
        request = httpx.Request("GET", f"http://127.0.0.1:{port}/", extensions={"timeout": timeout})
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(request)
        holder = asyncio.ensure_future(transport.handle_async_request(request))
        await asyncio.sleep(0.05)  # the one connection is taken, waiting for an answer
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(request)
        with pytest.raises(httpx.ReadTimeout):
            await holder
        await transport.aclose()
    with pytest.raises(httpx.ConnectError):
        await fetch(UpstreamTransport(), port)


async def test_body_left_unread_drops_the_connection() -> None:
    """Closing a response before its body ends closes the connection instead of reusing it."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
    server: Upstream

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await keep_answering(big if server.connections == 1 else OK)(reader, writer)

    async with upstream(script) as server:
        transport = UpstreamTransport()
        timeout = httpx.Timeout(2.0).as_dict()
        url = f"http://127.0.0.1:{server.port}/"
        request = httpx.Request("GET", url, extensions={"timeout": timeout})
        response = await transport.handle_async_request(request)
        await response.aclose()
        assert (await fetch(transport, server.port))[1] == b"ok"
        await transport.aclose()
    assert server.connections == 2
