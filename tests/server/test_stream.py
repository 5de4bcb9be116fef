"""`GET /oauth2/events` through the ASGI app in process: replay, sync, live events, the stream
cap (503 + Retry-After), and a stream dropped for falling behind."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.core.records import make_client
from tests.support.fake_events import until
from tokengate.asgi.types import Message
from tokengate.core import credentials
from tokengate.server import Settings, create_app
from tokengate.server.app import AuthorizationServer
from tokengate.storage.memory import MemoryStore

pytestmark = pytest.mark.anyio

RS_ID, RS_SECRET = "tgc_rs", "rs-secret"


class Peer:
    """One HTTP exchange with the app: what it sent, and a disconnect to trigger."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.messages: list[Message] = []
        self.gone = asyncio.Event()
        self.blocked = asyncio.Event()  # set: writes past the head never complete
        if blocked:
            self.blocked.set()
        self._asked = False

    async def receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if self.blocked.is_set() and message["type"] == "http.response.body":
            await asyncio.Event().wait()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.gone.set()  # the response is complete: `receive` answers http.disconnect

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def scope(last_event_id: str | None = None) -> dict[str, Any]:
    basic = base64.b64encode(f"{RS_ID}:{RS_SECRET}".encode())
    headers = [(b"authorization", b"Basic " + basic)]
    if last_event_id is not None:
        headers.append((b"last-event-id", last_event_id.encode()))
    return {"type": "http", "method": "GET", "path": "/oauth2/events", "headers": headers,
            "query_string": b"", "client": ("127.0.0.1", 5000)}  # fmt: skip


@pytest.fixture
async def app() -> AsyncIterator[AuthorizationServer]:
    """The app over a memory store with an introspecting client, at most 2 streams."""
    store = MemoryStore()
    rs = make_client(
        client_id=RS_ID, secret_hash=credentials.hash_value(RS_SECRET), can_introspect=True
    )
    await store.add_client(rs)
    settings = Settings(issuer="https://as.example", max_event_streams=2, event_queue_bytes=4096)
    app = create_app(settings, store)
    await app.startup()
    yield app
    await app.shutdown()


async def disable(app: AuthorizationServer, client_id: str) -> None:
    """Append a `client_disabled` event and let the hub see it."""
    await app.store.add_client(make_client(client_id=client_id))
    await app.store.disable_client(client_id, at=1_700_000_000)
    await app.hub.sync()


async def test_replay_sync_then_live_without_duplicates(app: AuthorizationServer) -> None:
    """Resuming at 0 with two stored events: frames 1 and 2, `sync` at 2, then event 3 live."""
    await disable(app, "tgc_one")
    await disable(app, "tgc_two")
    peer = Peer()
    stream = asyncio.create_task(app(scope("0"), peer.receive, peer.send))
    await until(lambda: b"event: sync" in peer.body)
    await disable(app, "tgc_three")
    await until(lambda: b"id: 3\n" in peer.body)
    body = peer.body.decode()
    assert peer.status == 200
    assert [body.count(f"id: {n}\nevent: revocation") for n in (1, 2, 3)] == [1, 1, 1]
    assert body.index("id: 2\nevent: sync") < body.index("id: 3\n")
    peer.gone.set()
    await asyncio.wait_for(stream, 5)
    assert len(app.hub.fanout) == 0


async def test_streams_beyond_the_cap_get_503_with_retry_after(app: AuthorizationServer) -> None:
    """Two streams open (the cap): a third is refused with 503 `temporarily_unavailable`."""
    peers = [Peer(), Peer()]
    streams = [asyncio.create_task(app(scope(), p.receive, p.send)) for p in peers]
    await until(lambda: all(b"event: sync" in p.body for p in peers))
    refused = Peer()
    await app(scope(), refused.receive, refused.send)
    assert refused.status == 503
    headers = dict(refused.messages[0]["headers"])
    assert headers[b"retry-after"] == str(app.settings.retry_after_seconds).encode()
    assert b"temporarily_unavailable" in refused.body
    for peer in peers:
        peer.gone.set()
    await asyncio.wait_for(asyncio.gather(*streams), 5)


async def test_a_stream_too_far_behind_ends_and_others_keep_going(app: AuthorizationServer) -> None:
    """A peer that stops reading is disconnected once 4 KiB are queued; the other stream lives."""
    stuck, healthy = Peer(), Peer()
    stuck_stream = asyncio.create_task(app(scope(), stuck.receive, stuck.send))
    healthy_stream = asyncio.create_task(app(scope(), healthy.receive, healthy.send))
    await until(lambda: b"event: sync" in stuck.body and b"event: sync" in healthy.body)
    stuck.blocked.set()
    for n in range(100):  # ~110 bytes each
        await disable(app, f"tgc_{n}")
        await asyncio.sleep(0.001)  # the healthy stream writes its share
    await asyncio.wait_for(stuck_stream, 5)  # ended, no exception
    assert app.hub.fanout.dropped == 1
    await until(lambda: b"id: 100\n" in healthy.body)
    assert app.metrics.event_subscribers.value == 1
    healthy.gone.set()
    await asyncio.wait_for(healthy_stream, 5)
