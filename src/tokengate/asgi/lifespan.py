"""The ASGI lifespan protocol (ASGI spec, "Lifespan"): startup and shutdown hooks, once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tokengate.asgi.types import Receive, Send

Hook = Callable[[], Awaitable[None]]


async def serve_lifespan(
    receive: Receive, send: Send, startup: Hook, shutdown: Hook, log: logging.Logger
) -> None:
    """Run `startup` and `shutdown` when the server says so; a failed startup is reported to
    the server (which then refuses to serve), never raised into its lifespan task."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:
                log.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
