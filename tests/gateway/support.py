"""Helpers for the gateway's in-process tests: a gateway over an `httpx.MockTransport` upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tokengate.gateway import Gateway, GatewaySettings, create_gateway
from tokengate.resource.runtime.validator import Validator

UPSTREAM = "http://upstream.test:8000"
CLIENT_ADDRESS = ("203.0.113.7", 4711)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


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
    gateway = create_gateway(settings, validator=validator, transport=httpx.MockTransport(handler))
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway, client=CLIENT_ADDRESS)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as http:
            yield Running(gateway, http)
    finally:
        await gateway.shutdown()
