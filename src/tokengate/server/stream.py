"""`GET /oauth2/events`: revocation events as a server-sent-events stream.

Why SSE rather than RFC 8935 push or RFC 8936 poll delivery of Security Event Tokens: resource
servers connect *out* to the authorization server (no inbound endpoint to expose and secure
on every resource server), the server keeps no per-subscriber delivery state (the subscriber
holds its position and resumes with the standard `Last-Event-ID` header), one long-lived
response delivers each event within milliseconds with no polling round trips, and every HTTP
stack and proxy understands it. The event payload is small JSON naming the token by its
SHA-256 hash (never the token) or the client whose tokens all ended.

The wire format (frames, payload, event kinds) is `tokengate.core.wire`'s.

After replaying any backlog the stream sends `event: sync` with the head position: from then on
the subscriber is caught up. A comment line is sent every `heartbeat` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib

from tokengate.asgi.types import Receive, Send
from tokengate.core.errors import InvalidRequest
from tokengate.core.models import RevocationEvent
from tokengate.core.wire import Notice, revocation_frame, sync_frame
from tokengate.server.events import EventHub
from tokengate.storage.base import EventStore

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


def event_frame(event: RevocationEvent) -> bytes:
    """One SSE frame for a stored revocation event."""
    notice = Notice(
        event.position, event.kind.value, event.client_id, event.token_hash, event.occurred_at
    )
    return revocation_frame(notice)


def start_position(last_event_id: str | None, head: int) -> int:
    """Resume after `Last-Event-ID`; a new subscriber starts at the head."""
    if last_event_id is None or not last_event_id.strip():
        return head
    value = last_event_id.strip()
    if not value.isdigit() or len(value) > 18:
        raise InvalidRequest("Last-Event-ID must be an event position")
    return min(int(value), head)


class EventStream:
    """One subscriber's stream; ends when the client disconnects or the server stops."""

    def __init__(
        self, store: EventStore, hub: EventHub, closing: asyncio.Event, heartbeat: float = 15.0
    ) -> None:
        self.store = store
        self.hub = hub
        self.closing = closing
        self.heartbeat = heartbeat

    async def run(self, position: int, receive: Receive, send: Send) -> None:
        """Send backlog, a sync frame, then live events until disconnect."""
        gone = asyncio.ensure_future(_ended(receive, self.closing))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await _body(send, b": tokengate revocation events\nretry: 1000\n\n")
            position = await self._replay(position, send)
            await _body(send, sync_frame(position))
            while not gone.done():
                advanced = asyncio.ensure_future(self.hub.wait_beyond(position, self.heartbeat))
                await asyncio.wait({advanced, gone}, return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    advanced.cancel()
                    break
                if advanced.result():
                    position = await self._replay(position, send)
                elif not self.hub.is_current():
                    # This process cannot read the event log: end the stream so subscribers
                    # reconnect (maybe elsewhere) and bound their caches meanwhile.
                    break
                else:
                    await _body(send, b": keepalive\n\n")
        except OSError:
            pass  # the peer went away mid-write
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone

    async def _replay(self, position: int, send: Send) -> int:
        while True:
            batch = await self.store.events_after(position, 500)
            if not batch:
                return position
            await _body(send, b"".join(event_frame(e) for e in batch))
            position = batch[-1].position


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _ended(receive: Receive, closing: asyncio.Event) -> None:
    """Complete when the client disconnects or the server shuts down."""
    disconnect = asyncio.ensure_future(_disconnected(receive))
    shutdown = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({disconnect, shutdown}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnect.cancel()
        shutdown.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
