"""Run an ASGI app's lifespan in process, the way uvicorn does (httpx's ASGITransport does not).

`app.router.lifespan_context(app)` would start only the innermost Starlette router, skipping
every middleware in front of it (`TokenGateMiddleware` starts its validator at
`lifespan.startup`), so tests that need the app started go through the whole ASGI stack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tokengate.asgi.types import ASGIApp, Message


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Send `lifespan.startup`, yield once the app is started, then shut it down."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete"
