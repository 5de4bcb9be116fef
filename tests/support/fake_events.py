"""An in-process `GET /oauth2/events` for subscriber tests: each connection is a byte queue.

`FakeEventServer` is itself an `HttpTransport` (`tokengate.resource.runtime.http`): give it to
`RevocationSubscriber(target, server, ...)` or to a `Validator` (`transport=`, with `other=`
answering the introspection requests). A test then pushes frames into
`server.connections[-1]` (from any thread), ends or breaks the stream, or makes the server
refuse (`status`) or be down (`down`). `ManualSleep` replaces `asyncio.sleep`, recording delays
and returning only when the test releases it, so no test waits for real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from tokengate.core.wire import METADATA_PATH, Notice, sync_frame
from tokengate.core.wire import revocation_frame as wire_frame
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.runtime.http import AttemptTimeouts, ConnectFailed, HttpTransport
from tokengate.resource.runtime.stats import Stats

__all__ = [
    "EVENTS_URL",
    "Connection",
    "FakeEventServer",
    "ManualSleep",
    "RecordingTarget",
    "revocation_frame",
    "sync_frame",
    "until",
]

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
    return wire_frame(Notice(position, kind, client_id, token_hash, occurred_at))


class Connection:
    """One subscriber connection (a `StreamResponse`); the test feeds its body."""

    def __init__(self, request: HttpRequest, status: int, content_type: str | None) -> None:
        self.request = request
        self.status = status
        self.content_type = content_type
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    @property
    def headers(self) -> dict[str, str]:
        """The request headers the subscriber sent."""
        return dict(self.request.headers)

    @property
    def last_event_id(self) -> str | None:
        """The `Last-Event-ID` the subscriber sent."""
        return self.headers.get("last-event-id")

    def send(self, *frames: bytes) -> None:
        """Deliver bytes (safe from any thread)."""
        for frame in frames:
            self._put(frame)

    def end(self) -> None:
        """End the response body cleanly."""
        self._put(None)

    def fail(self, exc: BaseException) -> None:
        """Break the stream with `exc` (e.g. `TimedOut`)."""
        self._put(exc)

    def _put(self, item: bytes | BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The frames the test sends, until it ends or breaks the stream."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class FakeEventServer:
    """Answers metadata and event-stream requests the way `tokengate serve` does."""

    def __init__(
        self, issuer: str = "https://as.example", *, other: HttpTransport | None = None
    ) -> None:
        self.issuer = issuer
        self.other = other
        self.connections: list[Connection] = []
        self.down = False
        self.status = 200
        self.content_type = "text/event-stream; charset=utf-8"
        self.metadata: dict[str, Any] = {
            "issuer": issuer,
            "revocation_events_endpoint": issuer + "/oauth2/events",
        }

    async def request(self, request: HttpRequest, timeouts: AttemptTimeouts) -> HttpResponse:
        """Metadata; anything else goes to `other` (e.g. a fake introspection endpoint)."""
        if self.down:
            raise ConnectFailed("unreachable (connection refused)")
        if request.url.removeprefix(self.issuer).startswith(METADATA_PATH):
            return HttpResponse(200, json.dumps(self.metadata).encode(), None, "application/json")
        if self.other is not None:
            return await self.other.request(request, timeouts)
        return HttpResponse(404, b'{"error":"not_found"}', None, "application/json")

    @contextlib.asynccontextmanager
    async def stream(
        self, request: HttpRequest, timeouts: AttemptTimeouts
    ) -> AsyncIterator[Connection]:
        """A new connection the test can feed (or a refusal with an empty body)."""
        if self.down:
            raise ConnectFailed("unreachable (connection refused)")
        refused = self.status != 200
        connection = Connection(request, self.status, self.content_type)
        if refused:
            connection.end()
        else:
            self.connections.append(connection)
        try:
            yield connection
        finally:
            connection.closed = True

    async def aclose(self) -> None:
        """Nothing pooled to close."""


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
