"""The proxy in bypass mode, in-process: a `MockUpstream` behind the gateway."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from tests.gateway.support import UPSTREAM, MockUpstream, echo, received, respond, running, values
from tokengate.gateway import GatewaySettings, create_gateway
from tokengate.gateway.upstream import (
    BROKEN,
    TIMEOUT,
    UNREACHABLE,
    UNSENDABLE,
    UpstreamFailure,
)

pytestmark = pytest.mark.anyio


async def test_bypass_forwards_end_to_end_headers_untouched() -> None:
    """The token header, Authorization and others arrive byte for byte; nothing is added."""
    sent = {"X-Access-Token": "tgat_abc.DEF~", "Authorization": "Bearer tgat_abc.DEF~", "X-A": "1"}
    async with running() as gw:
        response = await gw.http.get("/auth-api/hello", headers=sent)
    assert response.status_code == 200
    seen = received(response)
    for name, value in sent.items():
        assert (name.lower(), value) in seen
    client_sent = {"accept", "accept-encoding", "connection", "user-agent", "host"}
    added = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via"}
    assert {k for k, _ in seen} == {n.lower() for n in sent} | client_sent - {"connection"} | added


async def test_forwarded_headers_host_and_via() -> None:
    """Host is the upstream's; X-Forwarded-* name the client, scheme and original host."""
    async with running() as gw:
        response = await gw.http.get("/x", headers={"X-Forwarded-For": "10.1.1.1"})
    assert values(response, "host") == ["upstream.test:8000"]
    assert values(response, "x-forwarded-for") == ["10.1.1.1, 203.0.113.7"]
    assert values(response, "x-forwarded-proto") == ["http"]
    assert values(response, "x-forwarded-host") == ["gw.test"]
    assert values(response, "via") == ["1.1 tokengate"]
    async with running(preserve_host=True) as gw:
        assert values(await gw.http.get("/x"), "host") == ["gw.test"]


async def test_client_hop_by_hop_headers_are_not_forwarded() -> None:
    """Connection-named fields and fixed hop-by-hop fields stop at the gateway."""
    headers = {
        "Connection": "keep-alive, X-Private",
        "X-Private": "p",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic cHJveHk6cHc=",
        "Upgrade": "websocket",
    }
    async with running() as gw:
        response = await gw.http.get("/x", headers=headers)
    assert {k for k, _ in received(response)}.isdisjoint({h.lower() for h in headers})


async def test_response_hop_by_hop_headers_are_dropped() -> None:
    """The upstream's Connection-named fields go; repeated Set-Cookie lines all arrive."""

    async def upstream(request: httpx.Request) -> httpx.Response:
        headers = [
            ("Connection", "X-Internal"),
            ("X-Internal", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
        return respond(200, headers, b"ok")

    async with running(upstream) as gw:
        response = await gw.http.get("/x")
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert "x-internal" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers["via"] == "1.1 tokengate"


async def test_path_and_query_are_forwarded_as_sent() -> None:
    """The raw path (percent-escapes kept) and query string reach the upstream unchanged."""
    async with running() as gw:
        response = await gw.http.get("/a%20b/%7Euser?x=1&y=%20z")
    assert response.json()["url"] == "http://upstream.test:8000/a%20b/%7Euser?x=1&y=%20z"


@pytest.mark.parametrize(
    "target",
    ["/x/../auth-api/hello", "/public/..;/auth-api/items", "/x%2F..%2Fauth-api", "/a/%2e%2e/b",
     "/a\\b", "/../secret", "/x/../_tokengate/metrics", "/a/./b"],
)  # fmt: skip
async def test_ambiguous_targets_are_refused(target: str) -> None:
    """Dot segments, encoded slashes and backslashes get 400 and never reach the upstream."""
    reached: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        reached.append(request)
        return httpx.Response(200)

    async with running(upstream, upstream=UPSTREAM + "/base/") as gw:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raw = target.encode()  # as sent on the wire: httpx would normalise the dots away
        scope = {"type": "http", "method": "GET", "path": target, "raw_path": raw,
                 "query_string": b"", "headers": [(b"host", b"gw.test")], "scheme": "http",
                 "http_version": "1.1", "client": ("192.0.2.1", 1234)}  # fmt: skip
        await gw.gateway(scope, receive, send)
    assert sent[0]["status"] == 400
    assert b"invalid_request" in sent[1]["body"]
    assert reached == []


async def test_upstream_base_path_is_prefixed() -> None:
    """An upstream URL with a path mounts the gateway's paths under it."""
    async with running(upstream=UPSTREAM + "/base/") as gw:
        response = await gw.http.get("/items?q=1")
    assert response.json()["url"] == "http://upstream.test:8000/base/items?q=1"


async def test_request_body_streams_with_its_framing() -> None:
    """A sized body keeps Content-Length; a chunked body arrives whole; GET sends none."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"alpha-", b"beta-", b"gamma"):
            yield part

    async with running() as gw:
        sized = await gw.http.post("/x", content=b"0123456789")
        streamed = await gw.http.post("/x", content=chunks())
        plain = await gw.http.get("/x")
    assert sized.json()["body"] == "0123456789"
    assert values(sized, "content-length") == ["10"]
    assert streamed.json()["body"] == "alpha-beta-gamma"
    assert values(streamed, "transfer-encoding") == ["chunked"]
    assert plain.json()["body"] == ""
    assert values(plain, "content-length") == values(plain, "transfer-encoding") == []


async def test_response_body_is_relayed_in_chunks() -> None:
    """A large upstream body reaches the client as many messages, never joined into one."""

    async def upstream(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(50):
                yield b"x" * 65536

        return httpx.Response(200, stream=_Chunks(body()))

    settings = GatewaySettings(upstream=UPSTREAM)
    gateway = create_gateway(settings, client=MockUpstream(upstream))
    await gateway.startup()
    messages: list[dict[str, Any]] = []
    inbox = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await anyio_sleep_forever()
        raise AssertionError

    async def send(message: Any) -> None:
        messages.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/big",
        "raw_path": b"/big",
        "query_string": b"",
        "headers": [(b"host", b"gw.test")],
        "scheme": "http",
        "client": ("127.0.0.1", 1),
    }
    await gateway(scope, receive, send)
    await gateway.shutdown()
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert len(bodies) > 10
    assert max(len(m["body"]) for m in bodies) <= 65536
    assert sum(len(m["body"]) for m in bodies) == 50 * 65536
    assert bodies[-1].get("more_body", False) is False


class _Chunks(httpx.AsyncByteStream):
    """An unsized streamed body, as a transport hands it over."""

    def __init__(self, parts: AsyncIterator[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self.parts:
            yield part


async def anyio_sleep_forever() -> None:
    """Wait until cancelled (a client that never disconnects)."""
    await anyio.sleep_forever()


@pytest.mark.parametrize(
    ("failure", "status", "error", "kind"),
    [
        pytest.param(UpstreamFailure(UNREACHABLE), 502, "bad_gateway", "connect", id="refused"),
        pytest.param(UpstreamFailure(TIMEOUT), 504, "gateway_timeout", "timeout", id="timeout"),
        pytest.param(UpstreamFailure(BROKEN), 502, "bad_gateway", "protocol", id="broken"),
        pytest.param(UpstreamFailure(UNSENDABLE), 400, "invalid_request", "refused", id="text"),
        pytest.param(RuntimeError("bug"), 502, "bad_gateway", "internal", id="unexpected"),
    ],
)
async def test_upstream_failures_become_502_or_504(
    failure: Exception, status: int, error: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failure before the response is the gateway's own small JSON answer, never a 500."""

    async def upstream(request: httpx.Request) -> httpx.Response:
        raise failure

    caplog.set_level(logging.CRITICAL, logger="tokengate.gateway")
    async with running(upstream) as gw:
        response = await gw.http.get("/x", headers={"X-Access-Token": "tgat_secret"})
        metrics = (await gw.http.get("/_tokengate/metrics")).text
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert f'tokengate_gw_upstream_errors_total{{kind="{kind}"}} 1.0' in metrics
    assert f'tokengate_gw_requests_total{{code="{status}"}} 1.0' in metrics


async def test_reserved_prefix_is_never_forwarded() -> None:
    """/_tokengate/ answers health and metrics itself, 404 for the rest, without the upstream."""
    calls = 0

    async def upstream(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return await echo(request)

    async with running(upstream) as gw:
        health = await gw.http.get("/_tokengate/healthz")
        metrics = await gw.http.get("/_tokengate/metrics")
        other = await gw.http.get("/_tokengate/anything")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert metrics.status_code == 200
    assert "tokengate_gw_requests_in_flight" in metrics.text
    assert other.status_code == 404
    assert calls == 0
    async with running(upstream, metrics_path=None) as gw:
        assert (await gw.http.get("/_tokengate/metrics")).status_code == 404


async def test_websocket_handshakes_are_refused() -> None:
    """WebSockets are not proxied: the handshake is closed (policy violation)."""
    gateway = create_gateway(GatewaySettings(upstream=UPSTREAM))
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await gateway({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_client_disconnect_stops_an_endless_upstream_stream() -> None:
    """A client hanging up during an unsized stream ends the relay and closes the upstream body."""
    closed = anyio.Event()

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                yield b"event: tick\n\n"
                await anyio.sleep(0.01)

        async def aclose(self) -> None:
            closed.set()

    async def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())

    gateway = create_gateway(GatewaySettings(upstream=UPSTREAM), client=MockUpstream(upstream))
    await gateway.startup()
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep(0.1)  # the client listens a little, then goes away
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        """The client's socket: accepts everything."""

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "headers": [(b"host", b"gw.test")],
        "scheme": "http",
        "client": ("127.0.0.1", 1),
    }
    with anyio.fail_after(2):
        await gateway(scope, receive, send)
        await closed.wait()
    await gateway.shutdown()
