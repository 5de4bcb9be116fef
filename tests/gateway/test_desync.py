"""Response desync (RFC 9112 §6.3, §9.3): bytes beyond a response's framing reach no other client.

A raw upstream answers client A's request and then sends more than it framed: a body on a HEAD
response, an unsolicited extra response, or more body bytes than its Content-Length. The extra
bytes carry what an attacker wants (another client's protected answer, `X-Auth-Subject`
included). They arrive with the answer or a little later, while the connection sits idle in the
pool. Client B then asks for a public page over the gateway's one pooled connection and must get
its own answer, in both modes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.gateway.raw_upstream import RawUpstream, Script, head, raw_upstream, sized
from tokengate.gateway import GatewaySettings, UpstreamPool, build_policy, create_gateway
from tokengate.gateway.client import PooledUpstream
from tokengate.gateway.settings import UpstreamTimeouts
from tokengate.gateway.upstream import UpstreamRequest
from tokengate.resource.testing import claims, static_validator

pytestmark = pytest.mark.anyio

SECRET = b"HTTP/1.1 200 OK\r\nX-Auth-Subject: alice\r\nContent-Length: 14\r\n\r\nalice's secret"
OWN = sized(b"B's own")
HEAD_WITH_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(SECRET)
# what A's request gets: the framed answer, then the bytes beyond its framing
MISBEHAVIOUR = {
    "head-with-body": ("HEAD", HEAD_WITH_BODY, SECRET),
    "extra-response": ("GET", sized(b"alice"), SECRET),
    "overlong-body": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalice", b"!" + SECRET),
}
TOKEN = "tgat_alice"
FAR = 4_000_000_000


def misbehaving(case: str, late: bool, sent: asyncio.Event) -> Script:
    """Answer B's `/public/b` properly, A's request with `case`'s extra bytes, then set `sent`."""
    _, framed, extra = MISBEHAVIOUR[case]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await head(reader)
            if request.split(b" ")[1] == b"/public/b":
                writer.write(OWN)
                continue
            writer.write(framed)
            if late:  # the extra bytes come while the connection is idle in the pool
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(extra)
            await writer.drain()
            sent.set()

    return script


async def extra_bytes_arrived(sent: asyncio.Event) -> None:
    """Wait until the upstream wrote A's extra bytes, then let the gateway's loop read them."""
    await asyncio.wait_for(sent.wait(), 5)
    await asyncio.sleep(0.05)


@asynccontextmanager
async def through_gateway(server: RawUpstream, mode: str) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway with one pooled upstream connection, and a client for it."""
    validator = None
    if mode == "introspect":
        validator = static_validator({TOKEN: claims(scope="read", sub="alice", exp=FAR)})
    settings = GatewaySettings(
        upstream=server.url,
        mode="introspect" if validator is not None else "bypass",
        pool=UpstreamPool(max_connections=1),
        timeouts=UpstreamTimeouts(connect=2, read=2, write=2, pool=2),
        policy=build_policy(["/auth-api/**"]),
    )
    gateway = create_gateway(settings, validator=validator)
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as http:
            yield http
    finally:
        await gateway.shutdown()


def leaked(response: httpx.Response) -> bool:
    """Whether anything of A's exchange is in `response`."""
    return b"alice" in response.content or "x-auth-subject" in response.headers


@pytest.mark.parametrize("late", [False, True], ids=["with-the-answer", "while-idle"])
@pytest.mark.parametrize("case", list(MISBEHAVIOUR))
@pytest.mark.parametrize("mode", ["bypass", "introspect"])
async def test_bytes_beyond_the_framing_never_reach_the_next_client(
    mode: str, case: str, late: bool
) -> None:
    """Client B, unauthenticated, gets its own answer after A's exchange went out of frame."""
    method, sent = MISBEHAVIOUR[case][0], asyncio.Event()
    async with (
        raw_upstream(misbehaving(case, late, sent)) as server,
        through_gateway(server, mode) as http,
    ):
        first = await http.request(method, "/auth-api/a", headers={"X-Access-Token": TOKEN})
        assert first.status_code in (200, 502)  # A's own answer, or the gateway's 502
        await extra_bytes_arrived(sent)
        for _ in range(3):
            second = await http.get("/public/b")
            assert (second.status_code, second.content) == (200, b"B's own")
            assert not leaked(second)


@pytest.mark.parametrize("case", list(MISBEHAVIOUR))
async def test_a_connection_that_received_bytes_while_idle_is_not_reused(case: str) -> None:
    """aiohttp queues a late extra response for the next request; the pool closes it instead."""
    method, sent = MISBEHAVIOUR[case][0], asyncio.Event()
    async with raw_upstream(misbehaving(case, late=True, sent=sent)) as server:
        pool = PooledUpstream(server.url, UpstreamTimeouts(), UpstreamPool(max_connections=1))
        host = [(b"host", b"upstream.test")]
        first = await pool.send(UpstreamRequest(method, b"/auth-api/a", host))
        assert [chunk async for chunk in first.chunks()] in ([], [b"alice"])
        await first.aclose()
        await extra_bytes_arrived(sent)
        second = await pool.send(UpstreamRequest("GET", b"/public/b", host))
        body = b"".join([chunk async for chunk in second.chunks()])
        await second.aclose()
        await pool.aclose()
    assert (second.status, body) == (200, b"B's own")
    assert server.connections == 2
