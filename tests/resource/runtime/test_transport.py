"""`PooledTransport` (aiohttp) against a real loopback server writing canned HTTP bytes.

Each failure a socket can produce maps onto the runtime's three transport errors
(`runtime.http`): no connection → `ConnectFailed` (retried), no answer in time → `TimedOut`,
an answer that is not valid HTTP or fails its own content coding → `BrokenResponse`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tokengate.resource.protocol.rfc7662 import ClientCredentials, HttpRequest
from tokengate.resource.runtime.client import IntrospectionClient
from tokengate.resource.runtime.http import (
    AttemptTimeouts,
    BrokenResponse,
    ConnectFailed,
    StreamResponse,
    TimedOut,
)
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.runtime.transport import MAX_BODY, PooledTransport

pytestmark = pytest.mark.anyio

TIMEOUTS = AttemptTimeouts(connect=1.0, read=1.0)
QUICK = AttemptTimeouts(connect=1.0, read=0.2)
Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Conversation = Callable[["CannedServer", Reader, Writer], Awaitable[None]]


def answer(status: str = "200 OK", body: bytes = b'{"active":false}', *headers: str) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class CannedServer:
    """A loopback TCP server running `conversation` on every connection it accepts."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/oauth2/introspect"

    async def read_request(self, reader: Reader) -> bytes | None:
        """One request (head and body), or None once the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def _accept(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        try:
            await self.conversation(self, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def transport() -> AsyncIterator[PooledTransport]:
    """The default transport, closed after the test."""
    pooled = PooledTransport()
    yield pooled
    await pooled.aclose()


@contextlib.asynccontextmanager
async def serving(conversation: Conversation) -> AsyncIterator[CannedServer]:
    """A `CannedServer` on 127.0.0.1, any free port."""
    canned = CannedServer(conversation)
    canned.server = await asyncio.start_server(canned._accept, "127.0.0.1", 0)
    try:
        yield canned
    finally:
        canned.server.close()
        await canned.server.wait_closed()


def post(url: str, body: bytes = b"token=t") -> HttpRequest:
    """A form POST like an introspection request."""
    headers = (("content-type", "application/x-www-form-urlencoded"), ("x-probe", "1"))
    return HttpRequest("POST", url, headers, body)


async def keep_alive(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """Answer every request on the connection, keeping it open."""
    while await server.read_request(reader) is not None:
        writer.write(answer("200 OK", b'{"active":false}', "content-type: application/json"))
        await writer.drain()


def replying(response: bytes) -> Conversation:
    """Answer the first request with `response` bytes, then close."""

    async def conversation(server: CannedServer, reader: Reader, writer: Writer) -> None:
        await server.read_request(reader)
        writer.write(response)
        await writer.drain()

    return conversation


async def test_sends_the_request_and_reads_the_answer(transport: PooledTransport) -> None:
    """Method, headers and body go out as given; status, body and the two headers come back."""
    body = b'{"error":"server_error"}'
    canned = answer("503 Service Unavailable", body, "retry-after: 7", "content-type: text/x")
    async with serving(replying(canned)) as server:
        response = await transport.request(post(server.url, b"token=abc"), TIMEOUTS)
    assert (response.status, response.body) == (503, body)
    assert (response.retry_after, response.content_type) == ("7", "text/x")
    sent = server.requests[0]
    assert sent.startswith(b"POST /oauth2/introspect HTTP/1.1\r\n")
    assert b"\r\nx-probe: 1\r\n" in sent.lower()
    assert sent.endswith(b"\r\n\r\ntoken=abc")


async def test_connection_refused_is_connect_failed(transport: PooledTransport) -> None:
    """Nobody listening: `ConnectFailed`, which the client may retry."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed) as caught:
        await transport.request(post(f"http://127.0.0.1:{port}/i"), TIMEOUTS)
    assert caught.value.retryable


async def silent(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """Read the request and never answer."""
    await server.read_request(reader)
    await asyncio.sleep(5)


async def test_silent_server_is_timed_out(transport: PooledTransport) -> None:
    """Connected but no answer within the read timeout: `TimedOut`, not retryable."""
    async with serving(silent) as server:
        with pytest.raises(TimedOut) as caught:
            await transport.request(post(server.url), QUICK)
    assert not caught.value.retryable


async def test_bad_gzip_is_a_broken_response(transport: PooledTransport) -> None:
    """A body failing its own Content-Encoding is `BrokenResponse` (it was an escaping 500)."""
    canned = answer("200 OK", b"not gzip", "content-encoding: gzip")
    async with serving(replying(canned)) as server:
        with pytest.raises(BrokenResponse, match="undecodable"):
            await transport.request(post(server.url), TIMEOUTS)


async def test_good_gzip_is_decoded(transport: PooledTransport) -> None:
    """A correctly gzipped answer arrives decoded."""
    canned = answer("200 OK", gzip.compress(b'{"active":true}'), "content-encoding: gzip")
    async with serving(replying(canned)) as server:
        response = await transport.request(post(server.url), TIMEOUTS)
    assert response.body == b'{"active":true}'


@pytest.mark.parametrize(
    "canned",
    [
        pytest.param(b"SMTP ready\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n", id="bad-status"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", id="truncated"),
    ],
)
async def test_invalid_http_is_a_broken_response(transport: PooledTransport, canned: bytes) -> None:
    """Bytes that are not a whole HTTP response are `BrokenResponse`, never an answer."""
    async with serving(replying(canned)) as server:
        with pytest.raises(BrokenResponse):
            await transport.request(post(server.url), TIMEOUTS)


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param("content-length", id="declared-length"),
        pytest.param("close", id="until-close"),
    ],
)
async def test_oversized_body_is_refused(transport: PooledTransport, framing: str) -> None:
    """More than `MAX_BODY` bytes is refused, whether announced or not."""
    big = b"x" * (MAX_BODY + 1)
    head = f"content-length: {len(big)}" if framing == "content-length" else "connection: close"
    canned = f"HTTP/1.1 200 OK\r\n{head}\r\n\r\n".encode() + big
    async with serving(replying(canned)) as server:
        with pytest.raises(BrokenResponse, match="oversized"):
            await transport.request(post(server.url), TIMEOUTS)


async def test_body_of_exactly_max_body_is_read(transport: PooledTransport) -> None:
    """The bound is inclusive: `MAX_BODY` bytes are fine."""
    body = b"y" * MAX_BODY
    async with serving(replying(answer("200 OK", body))) as server:
        assert (await transport.request(post(server.url), TIMEOUTS)).body == body


async def test_keep_alive_connections_are_reused(transport: PooledTransport) -> None:
    """Sequential requests share one pooled connection."""
    async with serving(keep_alive) as server:
        for _ in range(3):
            assert (await transport.request(post(server.url), TIMEOUTS)).status == 200
    assert server.connections == 1
    assert len(server.requests) == 3


async def then_an_unasked_answer(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """Answer the first request inactive, then, while the connection is idle, send an answer
    nobody asked for (active); later connections are answered inactive."""
    await server.read_request(reader)
    writer.write(answer())
    await writer.drain()
    if server.connections == 1:
        await asyncio.sleep(0.05)
        writer.write(answer("200 OK", b'{"active":true}'))
        await writer.drain()
    await keep_alive(server, reader, writer)


async def test_an_answer_sent_while_idle_never_answers_the_next_request(
    transport: PooledTransport,
) -> None:
    """RFC 9112 §9.3: bytes a pooled connection received while no request was out are no
    answer to the next request (an introspection answer for another token): it is closed."""
    async with serving(then_an_unasked_answer) as server:
        assert (await transport.request(post(server.url), TIMEOUTS)).body == b'{"active":false}'
        await asyncio.sleep(0.2)
        assert (await transport.request(post(server.url), TIMEOUTS)).body == b'{"active":false}'
    assert server.connections == 2


async def drops_the_second(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """Answer the first request keep-alive; close as the client reuses the connection."""
    if server.connections == 1:
        await server.read_request(reader)
        writer.write(answer())
        await writer.drain()
        await server.read_request(reader)  # the reused connection: closed without an answer
        return
    await keep_alive(server, reader, writer)


async def test_a_pooled_connection_the_server_closed_is_retried(
    transport: PooledTransport,
) -> None:
    """A keep-alive connection closed by the server as it was reused is retried, and works."""
    async with serving(drops_the_second) as server:
        client = IntrospectionClient(
            transport,
            ClientCredentials("rs", "secret"),
            stats=Stats(),
            endpoint=server.url,
            rng=lambda: 0.0,
        )
        assert not (await client.introspect("first")).active
        assert not (await client.introspect("second")).active
    assert client.stats.introspection_retries.value == 1
    assert server.connections == 2


async def events(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """An event stream: two chunks, then silence."""
    await server.read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
    for chunk in (b": hello\n\n", b"event: sync\ndata: {}\n\n"):
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.01)
    await asyncio.sleep(5)


async def test_stream_yields_chunks_then_times_out_on_silence(
    transport: PooledTransport,
) -> None:
    """A streamed body arrives as it is sent; read silence beyond `read` is `TimedOut`."""
    received: list[bytes] = []

    async def drain(response: StreamResponse) -> None:
        async for chunk in response.chunks():
            received.append(chunk)  # noqa: PERF401  # a comprehension would lose them at TimedOut

    async with serving(events) as server:
        request = HttpRequest("GET", server.url, (("accept", "text/event-stream"),))
        async with transport.stream(request, QUICK) as response:
            assert (response.status, response.content_type) == (200, "text/event-stream")
            with pytest.raises(TimedOut):
                await drain(response)
    assert b"".join(received) == b": hello\n\nevent: sync\ndata: {}\n\n"


async def heartbeats(server: CannedServer, reader: Reader, writer: Writer) -> None:
    """An event stream carrying only comment lines, every 50 ms for 0.8 s, then silence."""
    await server.read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
    for _ in range(16):
        writer.write(b": keepalive\n\n")
        await writer.drain()
        await asyncio.sleep(0.05)
    await asyncio.sleep(5)


async def test_any_byte_resets_the_stream_read_timeout(transport: PooledTransport) -> None:
    """Heartbeat comments alone keep a stream open for four times `read` (0.2 s); then silence
    beyond `read` is `TimedOut`."""
    received: list[bytes] = []

    async def drain(response: StreamResponse) -> None:
        async for chunk in response.chunks():
            received.append(chunk)  # noqa: PERF401  # a comprehension would lose them at TimedOut

    async with serving(heartbeats) as server:
        request = HttpRequest("GET", server.url, (("accept", "text/event-stream"),))
        async with transport.stream(request, QUICK) as response:
            with pytest.raises(TimedOut):
                await drain(response)
    assert b"".join(received) == b": keepalive\n\n" * 16


async def test_stream_to_nobody_is_connect_failed(transport: PooledTransport) -> None:
    """Opening a stream to a closed port fails like a request does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = HttpRequest("GET", f"http://127.0.0.1:{port}/e", ())
    with pytest.raises(ConnectFailed):
        async with transport.stream(request, TIMEOUTS):
            pass


async def test_aclose_then_use_opens_a_new_pool(transport: PooledTransport) -> None:
    """After `aclose` the transport still works, on a fresh pool (the validator owns it)."""
    async with serving(keep_alive) as server:
        await transport.request(post(server.url), TIMEOUTS)
        await transport.aclose()
        await transport.aclose()  # idempotent
        assert (await transport.request(post(server.url), TIMEOUTS)).status == 200
    assert server.connections == 2
