"""Sending a complete `Response` over ASGI (HTTP, or a WebSocket handshake's denial response)."""

from __future__ import annotations

from collections.abc import Iterable

from tokengate.asgi.types import Send
from tokengate.core.responses import Response

HTTP = "http.response"
# ASGI "websocket.http.response" extension: deny a handshake with an HTTP response.
WEBSOCKET_DENIAL = "websocket.http.response"


async def send_response(
    send: Send,
    response: Response,
    *,
    head_only: bool = False,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    prefix: str = HTTP,
) -> None:
    """Status, headers with `content-length` (and `extra_headers`), then the body."""
    headers = [*response.headers, (b"content-length", b"%d" % len(response.body)), *extra_headers]
    await send({"type": f"{prefix}.start", "status": response.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": b"" if head_only else response.body})
