"""`PooledUpstream` (aiohttp) against scripted raw-TCP upstreams on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.gateway.raw_upstream import OK, RawUpstream, Script, head, keep_answering, raw_upstream
from tests.gateway.raw_upstream import sized as answer
from tokengate.gateway import UpstreamPool, UpstreamTimeouts
from tokengate.gateway.client import PooledUpstream, failure
from tokengate.gateway.upstream import (
    BROKEN,
    INTERNAL,
    TIMEOUT,
    UNREACHABLE,
    UNSENDABLE,
    GatewayError,
    UpstreamFailure,
    UpstreamRequest,
    UpstreamResponse,
)

pytestmark = pytest.mark.anyio

HOST = [(b"host", b"upstream.test")]


def client(
    server: RawUpstream | str, *, max_connections: int = 100, **timeouts: float
) -> PooledUpstream:
    """A pool to `server` with short timeouts (`timeouts` overrides them)."""
    url = server if isinstance(server, str) else server.url
    seconds = UpstreamTimeouts(**{"connect": 2.0, "read": 2.0, "write": 2.0, **timeouts})
    return PooledUpstream(url, seconds, UpstreamPool(max_connections=max_connections))


async def fetch(
    pool: PooledUpstream,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: AsyncIterator[bytes] | None = None,
) -> tuple[UpstreamResponse, bytes]:
    """One request through `pool`; the response and its whole body."""
    request = UpstreamRequest(method, b"/x", headers or HOST, body)
    response = await pool.send(request)
    try:
        data = b"".join([chunk async for chunk in response.chunks()])
    finally:
        await response.aclose()
    return response, data


async def parts(*chunks: bytes) -> AsyncIterator[bytes]:
    """A streamed request body."""
    for chunk in chunks:
        yield chunk


def kind(exc: pytest.ExceptionInfo[UpstreamFailure]) -> str:
    """The gateway error kind an `UpstreamFailure` carries."""
    return exc.value.error.kind


async def test_keep_alive_reuses_one_connection() -> None:
    """Three sequential requests travel on one connection."""
    async with raw_upstream(keep_answering(OK, OK, OK)) as server:
        pool = client(server)
        for _ in range(3):
            response, body = await fetch(pool)
            assert (response.status, body) == (200, b"ok")
        await pool.aclose()
    assert server.connections == 1


async def test_sends_exactly_the_given_header_fields() -> None:
    """No User-Agent, Accept, Accept-Encoding or Content-Type of aiohttp's; Host is ours."""
    heads: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await head(reader))
        heads.append(await reader.readexactly(4))
        writer.write(OK)

    sent = [(b"host", b"public.example"), (b"x-a", b"1"), (b"content-length", b"4")]
    async with raw_upstream(script) as server:
        pool = client(server)
        await fetch(pool, "POST", sent, parts(b"da", b"ta"))
        await pool.aclose()
    lines = heads[0].split(b"\r\n")
    assert lines[0] == b"POST /x HTTP/1.1"
    assert [line.lower() for line in lines[1:-2]] == [b"host: public.example", b"x-a: 1",
                                                      b"content-length: 4"]  # fmt: skip
    assert heads[1] == b"data"


async def test_target_is_sent_as_given() -> None:
    """Percent-escapes, dot segments and the query reach the upstream byte for byte."""
    heads: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await head(reader))
        writer.write(OK)

    async with raw_upstream(script) as server:
        pool = client(server)
        target = b"/a%20b/%7Euser/./c?x=1&y=%20z"
        response = await pool.send(UpstreamRequest("GET", target, HOST))
        await response.aclose()
        await pool.aclose()
    assert heads[0].startswith(b"GET " + target + b" HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("value", "id_"),
    [(b"caf\xe9", "latin-1"), (b"a\x01b", "control"), (b"a\x7fb", "delete")],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_field_values_it_cannot_send_exactly_are_refused(value: bytes, id_: str) -> None:
    """aiohttp writes text as UTF-8: other bytes, and controls, are a 400 before connecting."""
    async with raw_upstream(keep_answering(OK)) as server:
        pool = client(server)
        with pytest.raises(UpstreamFailure) as exc:
            await fetch(pool, headers=[*HOST, (b"x-name", value)])
        assert exc.value.error is UNSENDABLE
        _, body = await fetch(pool, headers=[*HOST, (b"x-name", "café".encode())])
        await pool.aclose()
    assert body == b"ok"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"ok", id="interim-1xx-skipped"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", b"", id="no-content"),
        pytest.param(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
            b"",
            id="redirect-not-followed",
        ),
    ],
)
async def test_response_framing(reply: bytes, expected: bytes) -> None:
    """Chunked bodies, 1xx interim responses, 204 and 302 are framed right; the connection stays."""
    async with raw_upstream(keep_answering(reply, OK)) as server:
        pool = client(server)
        assert (await fetch(pool))[1] == expected
        assert (await fetch(pool))[1] == b"ok"
        await pool.aclose()
    assert server.connections == 1


async def test_compressed_body_passes_raw() -> None:
    """A gzip body and its Content-Encoding arrive untouched (no decompression)."""
    raw = b"\x1f\x8b\x08\x00not-really-gzip"
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
    async with raw_upstream(keep_answering(reply % (len(raw), raw))) as server:
        pool = client(server)
        response, body = await fetch(pool)
        await pool.aclose()
    assert body == raw
    assert (b"Content-Encoding", b"gzip") in response.headers


async def test_close_delimited_body_is_read_to_eof() -> None:
    """Without Content-Length or chunking the body runs to EOF; the connection is not reused."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")

    async with raw_upstream(script) as server:
        pool = client(server)
        assert (await fetch(pool))[1] == b"all of it"
        assert (await fetch(pool))[1] == b"all of it"
        await pool.aclose()
    assert server.connections == 2


async def test_head_response_has_no_body() -> None:
    """A HEAD answer's Content-Length announces a body that is never sent or awaited."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with raw_upstream(keep_answering(reply, OK)) as server:
        pool = client(server)
        response, body = await fetch(pool, "HEAD")
        assert ((b"Content-Length", b"1000") in response.headers, body) == (True, b"")
        assert (await fetch(pool))[1] == b"ok"
        await pool.aclose()
    assert server.connections == 1


async def test_request_body_streams_chunked() -> None:
    """An unsized request body goes out chunked, piece by piece."""
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await head(reader))
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(OK)

    async with raw_upstream(script) as server:
        pool = client(server)
        await fetch(pool, "POST", body=parts(b"abc", b"de"))
        await pool.aclose()
    assert b"transfer-encoding: chunked" in received[0].lower()
    assert received[1] == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


async def test_cookies_are_not_kept() -> None:
    """A Set-Cookie from the upstream is never sent back on a later request."""
    heads: list[bytes] = []
    reply = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 2\r\n\r\nok"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            heads.append(await head(reader))
            writer.write(reply)

    async with raw_upstream(script) as server:
        pool = client(server)
        await fetch(pool)
        await fetch(pool)
        await pool.aclose()
    assert b"cookie" not in heads[1].lower()


async def test_idle_connection_closed_by_upstream_is_not_reused() -> None:
    """The upstream closes after answering; the next request opens a new connection."""

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(OK)  # then the connection closes, while the pool holds it idle

    async with raw_upstream(answer_once) as server:
        pool = client(server)
        await fetch(pool)
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert (await fetch(pool))[1] == b"ok"
        await pool.aclose()
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
    async with raw_upstream(dies_on_second_request()) as server:
        pool = client(server)
        await fetch(pool)
        assert (await fetch(pool))[1] == b"ok"
        await pool.aclose()
    assert server.connections == 2


async def test_reused_connection_dying_is_not_retried_with_a_body() -> None:
    """A POST is never sent twice: the failure is a 502 (protocol)."""
    async with raw_upstream(dies_on_second_request()) as server:
        pool = client(server)
        await fetch(pool)
        with pytest.raises(UpstreamFailure) as exc:
            await fetch(pool, "POST", body=parts(b"once"))
        await pool.aclose()
    assert kind(exc) == "protocol"
    assert server.connections == 1


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read everything, answer nothing."""
    await reader.read()


async def test_refused_silent_and_busy_upstreams() -> None:
    """Refused → connect (502); silent → timeout (504); no free connection → timeout (504)."""
    async with raw_upstream(silent) as server:
        pool = client(server, max_connections=1, read=0.5, pool=0.1, connect=0.1)
        with pytest.raises(UpstreamFailure) as exc:
            await fetch(pool)
        assert kind(exc) == "timeout"
        holder = asyncio.ensure_future(fetch(pool))
        await asyncio.sleep(0.05)  # the one connection is taken, waiting for an answer
        with pytest.raises(UpstreamFailure) as exc:
            await fetch(pool)
        assert kind(exc) == "timeout"
        with pytest.raises(UpstreamFailure):
            await holder
        await pool.aclose()
        url = server.url
    pool = client(url)
    with pytest.raises(UpstreamFailure) as exc:
        await fetch(pool)
    assert kind(exc) == "connect"
    await pool.aclose()


async def test_read_timeout_applies_to_each_body_gap() -> None:
    """A body that stops arriving for longer than `read` is cut with a timeout."""

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await reader.read()

    async with raw_upstream(stalls) as server:
        pool = client(server, read=0.2)
        response = await pool.send(UpstreamRequest("GET", b"/", HOST))
        chunks = response.chunks()
        received = await anext(chunks)
        with pytest.raises(UpstreamFailure) as exc:
            await anext(chunks)
        await response.aclose()
        await pool.aclose()
    assert (received, kind(exc)) == (b"abc", "timeout")


async def test_write_timeout_when_the_upstream_takes_no_body() -> None:
    """An upstream that stops reading the request body gets a 504 after `write` seconds."""

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        await asyncio.sleep(5)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536

    async with raw_upstream(never_reads) as server:
        pool = client(server, write=0.2, read=10)
        with pytest.raises(UpstreamFailure) as exc:
            async with asyncio.timeout(5):
                await fetch(pool, "POST", body=endless())
        await pool.aclose()
    assert kind(exc) == "timeout"


async def test_body_left_unread_drops_the_connection() -> None:
    """Closing a response before its body ends closes the connection instead of reusing it.

    (A body that has arrived whole is aiohttp's to keep: the connection is clean by then.)
    """
    replies = [answer(b"x" * 8_000_000), OK]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await head(reader)
            writer.write(replies.pop(0) if replies else OK)

    async with raw_upstream(script) as server:
        pool = client(server)
        response = await pool.send(UpstreamRequest("GET", b"/", HOST))
        await response.aclose()
        assert (await fetch(pool))[1] == b"ok"
        await pool.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        pytest.param(aiohttp.ConnectionTimeoutError(), TIMEOUT, id="connect-or-pool-timeout"),
        pytest.param(aiohttp.SocketTimeoutError(), TIMEOUT, id="read-timeout"),
        pytest.param(TimeoutError(), TIMEOUT, id="write-timeout"),
        pytest.param(aiohttp.ClientConnectorDNSError(None, OSError()), UNREACHABLE, id="dns"),  # type: ignore[arg-type]
        pytest.param(aiohttp.ServerDisconnectedError(), BROKEN, id="dropped"),
        pytest.param(aiohttp.ClientOSError(104, "reset"), BROKEN, id="reset"),
        pytest.param(aiohttp.ClientPayloadError("cut"), BROKEN, id="payload"),
        pytest.param(RuntimeError("bug"), INTERNAL, id="not-aiohttp"),
    ],
)
def test_aiohttp_failures_map_to_gateway_errors(exc: BaseException, error: GatewayError) -> None:
    """Timeouts (aiohttp's are TimeoutErrors too) → 504; connecting → 502; the rest → 502."""
    assert failure(exc) is error
