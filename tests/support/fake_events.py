"""An in-process `GET /oauth2/events` for subscriber tests: each connection is a byte queue.

`FakeEventServer.transport()` goes into `RevocationSubscriber(transport=...)`; a test then
pushes frames into `server.connections[-1]`, ends or breaks the stream, or makes the server
refuse (`status`) or be down (`down`). `ManualSleep` replaces `asyncio.sleep`, recording delays
and returning only when the test releases it, so no test waits for real seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tokengate.resource.runtime.stats import Stats

EVENTS_URL = "https://as.example/oauth2/events"


def revocation_frame(
    position: int,
    kind: str = "token_revoked",
    *,
    client_id: str = "app",
    token_hash: str | None = None,
    occurred_at: float = 0,
) -> bytes:
    """An `event: revocation` frame in the authorization server's wire format."""
    data = {
        "position": position,
        "kind": kind,
        "client_id": client_id,
        "token_hash": token_hash,
        "occurred_at": occurred_at,
    }
    return f"id: {position}\nevent: revocation\ndata: {json.dumps(data)}\n\n".encode()


def sync_frame(position: int) -> bytes:
    """The "caught up" frame."""
    return f'id: {position}\nevent: sync\ndata: {{"position":{position}}}\n\n'.encode()


class Connection(httpx.AsyncByteStream):
    """One subscriber connection; the test feeds its body."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.closed = False
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    @property
    def last_event_id(self) -> str | None:
        """The `Last-Event-ID` the subscriber sent."""
        return self.request.headers.get("last-event-id")

    def send(self, *frames: bytes) -> None:
        """Deliver bytes."""
        for frame in frames:
            self._queue.put_nowait(frame)

    def end(self) -> None:
        """End the response body cleanly."""
        self._queue.put_nowait(None)

    def fail(self, exc: BaseException) -> None:
        """Break the stream with `exc` (e.g. `httpx.ReadTimeout`)."""
        self._queue.put_nowait(exc)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self.closed = True


class FakeEventServer:
    """Answers metadata and event-stream requests the way `tokengate serve` does."""

    def __init__(self, issuer: str = "https://as.example") -> None:
        self.issuer = issuer
        self.connections: list[Connection] = []
        self.down = False
        self.status = 200
        self.content_type = "text/event-stream; charset=utf-8"
        self.metadata: dict[str, Any] = {
            "issuer": issuer,
            "revocation_events_endpoint": issuer + "/oauth2/events",
        }

    def transport(self) -> httpx.MockTransport:
        """The transport to give the subscriber."""
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """MockTransport handler."""
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.startswith("/.well-known/"):
            return httpx.Response(200, json=self.metadata)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "invalid_client"})
        connection = Connection(request)
        self.connections.append(connection)
        return httpx.Response(200, headers={"content-type": self.content_type}, stream=connection)


class ManualSleep:
    """An injectable `sleep` that records each delay and waits for the test to release it."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._pending: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((delay, future))
        await future

    def waiting(self, which: Callable[[float], bool] = lambda _: True) -> int:
        """How many sleepers matching `which` are waiting."""
        return sum(1 for delay, future in self._pending if which(delay) and not future.done())

    def release(self, which: Callable[[float], bool] = lambda _: True) -> int:
        """Wake the sleepers whose delay matches `which`; returns how many."""
        woken = 0
        for delay, future in self._pending:
            if which(delay) and not future.done():
                future.set_result(None)
                woken += 1
        self._pending = [(d, f) for d, f in self._pending if not f.done()]
        return woken


class RecordingTarget:
    """A `RevocationTarget` that records what it is asked to do."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.evicted_tokens: list[str] = []
        self.evicted_clients: list[str] = []
        self.caps: list[float | None] = []
        self.fail_next_eviction = False

    @property
    def cap(self) -> float | None:
        """The TTL cap in force."""
        return self.caps[-1] if self.caps else None

    async def evict_token_hash(self, token_hash: str) -> bool:
        """Record (or fail once, when asked to)."""
        if self.fail_next_eviction:
            self.fail_next_eviction = False
            raise ConnectionError("shared cache down")
        self.evicted_tokens.append(token_hash)
        return True

    async def evict_client(self, client_id: str) -> int:
        """Record."""
        self.evicted_clients.append(client_id)
        return 1

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Record."""
        self.caps.append(seconds)


async def until(condition: Callable[[], bool], *, turns: int = 2000) -> None:
    """Let the event loop run until `condition` holds (no wall-clock waiting)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
