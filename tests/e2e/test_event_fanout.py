"""Hundreds of event streams on one real `tokengate serve`: each revocation reaches all of them,
heartbeats reach every quiet one, and a stream beyond `--max-event-streams` gets 503."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import create_client, running_server
from tokengate.core.credentials import hash_value

pytestmark = pytest.mark.e2e

STREAMS = 300
HEARTBEAT = 0.5


class Subscriber:
    """One raw `GET /oauth2/events` connection, read as bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""

    async def read_until(self, marker: bytes, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while marker not in self.received:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise AssertionError("the server closed the stream")
                self.received += chunk


async def subscribe(port: int, authorization: str) -> Subscriber:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /oauth2/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    subscriber = Subscriber(reader, writer)
    await subscriber.read_until(b"event: sync\n", 30)
    return subscriber


def subscriber_gauge(base_url: str) -> float:
    metrics = httpx.get(base_url + "/metrics").text
    found = re.search(r"^tokengate_event_subscribers (\S+)$", metrics, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


async def fan_out(base_url: str, port: int, app: tuple[str, str], rs: tuple[str, str]) -> None:
    authorization = "Basic " + base64.b64encode(f"{rs[0]}:{rs[1]}".encode()).decode()
    subscribers = []
    for _ in range(STREAMS // 50):  # 50 at a time, as a fleet reconnecting would
        subscribers += await asyncio.gather(*(subscribe(port, authorization) for _ in range(50)))
    async with httpx.AsyncClient(base_url=base_url) as http:
        refused = await http.get("/oauth2/events", headers={"Authorization": authorization})
        assert refused.status_code == 503
        assert refused.json()["error"] == "temporarily_unavailable"
        assert int(refused.headers["retry-after"]) >= 1
        assert subscriber_gauge(base_url) == STREAMS

        await asyncio.gather(
            *(s.read_until(b": keepalive\n\n", 3 * HEARTBEAT) for s in subscribers)
        )
        form = {"grant_type": "client_credentials"}
        token = (await http.post("/oauth2/token", data=form, auth=app)).json()["access_token"]
        started = time.monotonic()
        assert (
            await http.post("/oauth2/revoke", data={"token": token}, auth=app)
        ).status_code == 200
        marker = f'"token_hash":"{hash_value(token)}"'.encode()
        await asyncio.gather(*(s.read_until(marker, 10) for s in subscribers))
        print(f"one revocation reached {STREAMS} streams in {time.monotonic() - started:.3f} s")
    for subscriber in subscribers:
        subscriber.writer.close()
    assert all(s.received.count(b"event: revocation") == 1 for s in subscribers)


def test_hundreds_of_streams_share_each_event(tmp_path: Path) -> None:
    """300 streams (the cap): the 301st gets 503 + Retry-After; heartbeats and one revocation
    reach all 300; closing them brings the gauge back to 0."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    app = create_client(database, "app", "read")
    rs = create_client(database, "rs", "", introspect=True)
    extra = ("--max-event-streams", str(STREAMS), "--event-heartbeat", str(HEARTBEAT))
    with running_server(database, log_dir=tmp_path, extra_args=extra) as server:
        asyncio.run(fan_out(server.base_url, server.port, app, rs))
        deadline = time.monotonic() + 10
        while subscriber_gauge(server.base_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert subscriber_gauge(server.base_url) == 0
    assert "Traceback" not in server.logs()
