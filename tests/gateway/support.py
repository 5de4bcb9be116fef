"""Helpers for the gateway's in-process tests: a gateway over an in-process `MockUpstream`."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tokengate.gateway import Gateway, GatewaySettings, create_gateway
from tokengate.gateway.upstream import UpstreamRequest
from tokengate.resource.runtime.validator import Validator

UPSTREAM = "http://upstream.test:8000"
CLIENT_ADDRESS = ("203.0.113.7", 4711)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


class MockUpstream:
    """An `Upstream` answering in process with `handler`, as `httpx.MockTransport` would.

    The handler sees the request as an `httpx.Request` (body still streaming) and raises
    `UpstreamFailure` to play a failing upstream.
    """

    def __init__(self, handler: Handler, origin: str = UPSTREAM) -> None:
        self.handler = handler
        self.origin = httpx.URL(origin)

    async def send(self, request: UpstreamRequest) -> MockResponse:
        """Hand `request` to the handler; its response, body unread."""
        url = self.origin.copy_with(raw_path=request.target)
        content = b"" if request.body is None else request.body
        built = httpx.Request(request.method, url, headers=request.headers, content=content)
        answer = self.handler(built)
        return MockResponse(await answer if inspect.isawaitable(answer) else answer)

    async def aclose(self) -> None:
        """Nothing is pooled."""


class MockResponse:
    """An `httpx.Response` seen as an `UpstreamResponse`."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    @property
    def status(self) -> int:
        """The handler's status."""
        return self.response.status_code

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The handler's header fields."""
        return self.response.headers.raw

    def chunks(self) -> AsyncIterator[bytes]:
        """The handler's body stream."""
        return self.response.aiter_raw()

    async def aclose(self) -> None:
        """Close the handler's body stream."""
        await self.response.aclose()


async def echo(request: httpx.Request) -> httpx.Response:
    """The upstream: answers with the request it received (its body read as a stream)."""
    assert isinstance(request.stream, httpx.AsyncByteStream)
    body = b"".join([chunk async for chunk in request.stream])
    document = {
        "method": request.method,
        "url": str(request.url),
        "headers": [[k.decode(), v.decode("latin-1")] for k, v in request.headers.raw],
        "body": body.decode("latin-1"),
    }
    return respond(200, [("content-type", "application/json")], json.dumps(document).encode())


def respond(status: int, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
    """A response as a real transport returns it: its body not yet read.

    (`httpx.Response(content=...)` arrives already read, which no transport ever produces.)
    """
    sized = [*headers, ("content-length", str(len(body)))]
    return httpx.Response(status, headers=sized, stream=httpx.ByteStream(body))


def received(response: httpx.Response) -> list[tuple[str, str]]:
    """The header list the echo upstream saw."""
    return [(k, v) for k, v in response.json()["headers"]]


def values(response: httpx.Response, name: str) -> list[str]:
    """Every value of header `name` the echo upstream saw."""
    return [v for k, v in received(response) if k.lower() == name.lower()]


@dataclass
class Running:
    """A started gateway and a client talking to it."""

    gateway: Gateway
    http: httpx.AsyncClient


@asynccontextmanager
async def running(
    handler: Handler = echo, validator: Validator | None = None, **overrides: Any
) -> AsyncIterator[Running]:
    """A gateway (bypass, or introspect when given a validator) in front of `handler`."""
    mode = "introspect" if validator is not None else "bypass"
    settings = GatewaySettings(**{"upstream": UPSTREAM, "mode": mode, **overrides})
    gateway = create_gateway(settings, validator=validator, client=MockUpstream(handler))
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway, client=CLIENT_ADDRESS)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as http:
            yield Running(gateway, http)
    finally:
        await gateway.shutdown()
