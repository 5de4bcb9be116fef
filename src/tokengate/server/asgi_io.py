"""Reading requests and writing `Response`s over raw ASGI, with limits and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from tokengate.core.errors import InvalidRequest, RequestTooLarge
from tokengate.core.responses import Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The peer address travels with the headers under a name no HTTP field can have.
PEER = ":peer"
_WANTED = frozenset({b"authorization", b"content-type", b"content-length", b"x-request-id"})


class ClientDisconnected(Exception):
    """The peer went away before the body was complete."""


def request_headers(scope: Scope) -> dict[str, str]:
    """The few headers the endpoints read, lower-cased; a repeated one is an error."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()
        if name in _WANTED:
            key = name.decode()
            if key in found:
                raise InvalidRequest(f"repeated {key} header")
            found[key] = raw_value.decode("latin-1")
    client = scope.get("client")
    if client:
        found[PEER] = str(client[0])
    return found


async def read_body(receive: Receive, headers: dict[str, str], limit: int, timeout: float) -> bytes:
    """The whole body, refusing more than `limit` bytes (413) or a slow sender (408-ish 400)."""
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise (
            RequestTooLarge("request body too large")
            if declared.isdigit()
            else InvalidRequest("invalid Content-Length")
        )
    return await _within(timeout, _collect(receive, limit))


async def _within(timeout: float, work: Coroutine[Any, Any, bytes]) -> bytes:
    """`asyncio.timeout` for the hot path: one timer handle instead of a context manager.

    A timeout becomes `InvalidRequest`; a cancellation from elsewhere stays a cancellation.
    """
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await work
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:
            raise InvalidRequest("request body not received in time") from None
        raise
    finally:
        handle.cancel()


async def _collect(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge("request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, response: Response, head_only: bool = False, request_id: str | None = None
) -> None:
    """Emit status, headers (with content-length and the request id) and body."""
    headers = [*response.headers, (b"content-length", b"%d" % len(response.body))]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})
