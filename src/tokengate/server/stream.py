"""`GET /oauth2/events`: revocation events as a server-sent-events stream.

Why SSE rather than RFC 8935 push or RFC 8936 poll delivery of Security Event Tokens: resource
servers connect *out* to the authorization server (no inbound endpoint to expose and secure
on every resource server), the server keeps no per-subscriber delivery state (the subscriber
holds its position and resumes with the standard `Last-Event-ID` header), one long-lived
response delivers each event within milliseconds with no polling round trips, and every HTTP
stack and proxy understands it. The event payload is small JSON naming the token by its
SHA-256 hash (never the token) or the client whose tokens all ended.

The wire format (frames, payload, event kinds) is `tokengate.core.wire`'s.

A stream replays the backlog after `Last-Event-ID` from the store, up to the position at which
it subscribed, then sends `event: sync` with that position: from then on the subscriber is
caught up, and live events reach it through the hub's shared fan-out (`server.fanout`), one
read and one encoding per event for all streams. A comment line comes every `heartbeat`
seconds of quiet, so a subscriber that hears nothing for a few seconds knows the server hangs.
"""

from __future__ import annotations

import asyncio

from tokengate.asgi.types import Receive, Send
from tokengate.core.errors import InvalidRequest
from tokengate.core.wire import sync_frame
from tokengate.server.events import EventHub, event_frame
from tokengate.server.fanout import Subscription
from tokengate.storage.base import EventStore

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]
PREAMBLE = b": tokengate revocation events\nretry: 1000\n\n"
REPLAY_BATCH = 500


def start_position(last_event_id: str | None, head: int) -> int:
    """Resume after `Last-Event-ID`; a new subscriber starts at the head."""
    if last_event_id is None or not last_event_id.strip():
        return head
    value = last_event_id.strip()
    if not value.isdigit() or len(value) > 18:
        raise InvalidRequest("Last-Event-ID must be an event position")
    return min(int(value), head)


class EventStream:
    """Serves subscriptions; each stream ends when its client disconnects, the server stops,
    or it falls too far behind (dropped by the fan-out, which then cancels its task)."""

    def __init__(self, store: EventStore, hub: EventHub) -> None:
        self.store = store
        self.hub = hub

    async def run(
        self, subscription: Subscription, position: int, receive: Receive, send: Send
    ) -> None:
        """Send the backlog after `position` and a sync frame; the fan-out writes live events
        from then on, while this task waits for the disconnect (or the end of the response)."""
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await _body(send, PREAMBLE)
            await self._replay(position, subscription.head, send)
            await _body(send, sync_frame(subscription.head))
            await subscription.go_live()
            await _disconnected(receive)
        except asyncio.CancelledError:
            if not subscription.dropped:
                raise
            _uncancel()  # dropped by the fan-out: end here, the server closes the connection
        except OSError:
            pass  # the peer went away mid-write
        finally:
            self.hub.fanout.unsubscribe(subscription)

    async def _replay(self, position: int, head: int, send: Send) -> None:
        """The events in (position, head], from the store, in batches."""
        while position < head:
            stored = await self.store.events_after(position, REPLAY_BATCH)
            batch = [e for e in stored if e.position <= head]
            if not batch:
                return
            await _body(send, b"".join(event_frame(e) for e in batch))
            position = batch[-1].position


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
