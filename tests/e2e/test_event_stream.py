"""GET /oauth2/events: revocation events over SSE from a real server process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import create_client, run_cli, running_server

pytestmark = pytest.mark.e2e


def _frames(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in frame:  # SSE dispatches only frames that carry data
                yield frame
            frame = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            frame[key] = value.lstrip(" ")


def _token(base: str, cid: str, secret: str) -> str:
    response = httpx.post(
        base + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
    )
    return str(response.json()["access_token"])


def test_stream_requires_introspect_permission(database_url: str, tmp_path: Path) -> None:
    """Only authenticated clients allowed to introspect may subscribe."""
    cid, secret = create_client(database_url, "svc", "read")
    with running_server(database_url, log_dir=tmp_path) as server:
        assert httpx.get(server.base_url + "/oauth2/events").status_code == 401
        assert httpx.get(server.base_url + "/oauth2/events", auth=(cid, secret)).status_code == 401


def test_live_events_and_replay(database_url: str, tmp_path: Path) -> None:
    """Revocations (endpoint and CLI) arrive live; Last-Event-ID replays what was missed."""
    cid, secret = create_client(database_url, "svc", "read")
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        base = server.base_url
        first, second = _token(base, cid, secret), _token(base, cid, secret)
        with httpx.stream("GET", base + "/oauth2/events", auth=rs, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            frames = _frames(stream.iter_lines())
            sync = next(frames)
            assert sync["event"] == "sync"
            started = time.monotonic()
            httpx.post(base + "/oauth2/revoke", data={"token": first}, auth=(cid, secret))
            event = next(frames)
            assert time.monotonic() - started < 1.0
            data = json.loads(event["data"])
            assert data["kind"] == "token_revoked"
            assert first not in event["data"]
            run_cli("clients", "disable", cid, "--database", database_url)
            data2 = json.loads(next(frames)["data"])
            assert data2["kind"] == "client_disabled"
            assert data2["client_id"] == cid
        assert second  # revoked by the disable; replay below starts before both events
        with httpx.stream(
            "GET",
            base + "/oauth2/events",
            auth=rs,
            timeout=10,
            headers={"Last-Event-ID": str(int(sync["id"]))},
        ) as stream:
            frames = _frames(stream.iter_lines())
            kinds = [json.loads(next(frames)["data"])["kind"] for _ in range(2)]
            assert kinds == ["token_revoked", "client_disabled"]
            assert next(frames)["event"] == "sync"


def test_graceful_stop_ends_streams_quickly(tmp_path: Path) -> None:
    """SIGTERM with a subscriber connected: the stream ends and the server exits within 2 s."""
    database_url = f"sqlite:///{tmp_path / 'stop.db'}"
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        with httpx.stream("GET", server.base_url + "/oauth2/events", auth=rs, timeout=10) as stream:
            lines = stream.iter_lines()
            next(lines)
            started = time.monotonic()
            assert server.process is not None
            server.process.terminate()
            server.process.wait(timeout=10)
            elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"graceful stop took {elapsed:.1f}s"
        assert "Traceback" not in server.logs()
