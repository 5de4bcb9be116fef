"""Faults between a real example resource server and a real `tokengate serve`.

A small TCP proxy sits between the two and misbehaves on command: it delays every answer past
the resource server's introspection timeout (slow AS), swallows everything (a half-open
connection: accepted, never answered), or stops forwarding after the first bytes of an answer.
In each case uncached tokens get 503 + Retry-After within the timeout, the circuit opens and
then fails fast, cached tokens keep passing, and once the proxy behaves the circuit half-opens,
closes and requests succeed again. Separately, the authorization server is killed under load
and comes back on its own port: no resource-server restart is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    running_server,
    wait_http,
)

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0  # --introspection-timeout
THRESHOLD = 3  # --circuit-threshold
COOLDOWN = 2.0  # --circuit-cooldown
MARGIN = 0.75  # the machine is shared and noisy; still well under "hangs"
FAST = 0.6 * TIMEOUT  # an open circuit answers at once (and the proxy sees no byte of it)
PASS, DELAY, BLACKHOLE, STALL = "pass", "delay", "blackhole", "stall"
CLOSED, OPEN = 0, 1  # the circuit_state gauge


class FaultyProxy:
    """A loopback TCP proxy whose behaviour switches at once, open connections included."""

    def __init__(self, upstream_port: int, delay: float = 3 * TIMEOUT) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.mode = PASS
        self.port = 0
        self.received = 0  # request bytes from the resource server, forwarded or not
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._thread.join(5)

    def _run(self) -> None:
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.create_task(self._requests(reader, up_writer)),
            asyncio.create_task(self._answers(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for side in (writer, up_writer):
                side.close()

    async def _requests(self, reader: asyncio.StreamReader, to: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.received += len(data)
                if self.mode != BLACKHOLE:
                    to.write(data)

    async def _answers(self, reader: asyncio.StreamReader, to: asyncio.StreamWriter) -> None:
        stalled = False
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.mode == DELAY:
                    await asyncio.sleep(self.delay)
                if self.mode == STALL and not stalled:
                    to.write(data[:12])  # "HTTP/1.1 200", then nothing more on this connection
                    stalled = True
                if self.mode in (PASS, DELAY) and not stalled:
                    to.write(data)


@contextlib.contextmanager
def example_rs(rs_client: tuple[str, str], log_dir: Path, *args: str) -> Iterator[str]:
    """`tokengate example-resource-server` with short timeouts; yields its base URL."""
    port = free_port()
    command = [*TOKENGATE, "example-resource-server", "--port", str(port),
               "--client-id", rs_client[0], "--cache-max-ttl", "600",
               "--introspection-timeout", str(TIMEOUT), "--circuit-threshold", str(THRESHOLD),
               "--circuit-cooldown", str(COOLDOWN), *args]  # fmt: skip
    env = {**os.environ, "TOKENGATE_RS_CLIENT_SECRET": rs_client[1]}
    with (log_dir / f"resource-server-{port}.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/public/ping", proc=process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class Setup:
    """A database with an app client and the resource server's client."""

    database: str
    app: tuple[str, str]
    rs: tuple[str, str]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A fresh SQLite database with both clients."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    return Setup(
        database,
        create_client(database, "app", "read"),
        create_client(database, "rs", "", introspect=True),
    )


def issue(server: ServerProcess, client: tuple[str, str]) -> str:
    """A fresh `read` token, straight from the authorization server."""
    response = httpx.post(
        server.base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=client,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def timed(rs: str, token: str) -> tuple[httpx.Response, float]:
    """GET /auth-api/hello with `token`; the response and the seconds it took."""
    started = time.monotonic()
    response = httpx.get(rs + "/auth-api/hello", headers={"X-Access-Token": token}, timeout=30)
    return response, time.monotonic() - started


def stats(rs: str) -> dict[str, Any]:
    """The counters of the resource server's `/public/status`."""
    document: dict[str, Any] = httpx.get(rs + "/public/status", timeout=5).json()
    return dict(document["stats"])


def assert_no_traceback(log_dir: Path) -> None:
    """No process of the test logged a traceback."""
    for log in log_dir.glob("*.log"):
        assert "Traceback" not in log.read_text(errors="replace"), log.name


def assert_unavailable(response: httpx.Response, elapsed: float, at_most: float) -> None:
    """A clean 503 with a usable Retry-After, in bounded time."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed <= at_most, f"{elapsed:.2f}s"


@pytest.mark.parametrize("mode", [DELAY, BLACKHOLE, STALL])
def test_slow_or_silent_authorization_server(setup: Setup, tmp_path: Path, mode: str) -> None:
    """delay: answers late; blackhole: half-open, never answers; stall: stops mid-response.

    Each way: 503 within the timeout, the circuit opens and fails fast, cached tokens pass,
    and after the fault the circuit half-opens and closes by itself.
    """
    with (
        running_server(setup.database, log_dir=tmp_path) as server,
        FaultyProxy(server.port) as proxy,
        example_rs(
            setup.rs,
            tmp_path,
            "--introspection-url",
            f"http://127.0.0.1:{proxy.port}/oauth2/introspect",
            "--no-revocation-events",
        ) as rs,
    ):
        cached = issue(server, setup.app)
        assert timed(rs, cached)[0].status_code == 200
        uncached = [issue(server, setup.app) for _ in range(THRESHOLD + 2)]

        proxy.mode = mode
        for token in uncached[:THRESHOLD]:
            response, elapsed = timed(rs, token)
            assert_unavailable(response, elapsed, TIMEOUT + MARGIN)
            assert elapsed >= 0.8 * TIMEOUT  # it was the fault that answered, after the timeout
            assert timed(rs, cached)[0].status_code == 200
        assert stats(rs)["circuit_opened"] == 1
        assert stats(rs)["circuit_state"] == OPEN

        before = proxy.received
        response, elapsed = timed(rs, uncached[THRESHOLD])
        assert_unavailable(response, elapsed, FAST)
        assert int(response.headers["retry-after"]) <= COOLDOWN
        cached_response, elapsed = timed(rs, cached)
        assert (cached_response.status_code, elapsed < FAST) == (200, True)
        assert proxy.received == before  # the open circuit called no one

        proxy.mode = PASS
        time.sleep(COOLDOWN)
        response, elapsed = timed(rs, uncached[THRESHOLD + 1])  # the half-open probe
        assert response.status_code == 200, response.text
        assert elapsed < TIMEOUT
        assert stats(rs)["circuit_state"] == CLOSED
        assert timed(rs, uncached[0])[0].status_code == 200
    assert_no_traceback(tmp_path)


@dataclass
class Traffic:
    """Requests to the resource server from a few threads, recorded per phase."""

    rs: str
    cached: list[str]
    uncached: list[str]
    phase: str = "before"
    records: list[tuple[str, str, int, float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run_cached(self) -> None:
        with httpx.Client(base_url=self.rs, timeout=30) as http:
            while not self.stop.is_set():
                for token in self.cached:
                    self._one(http, "cached", token)

    def run_uncached(self) -> None:
        with httpx.Client(base_url=self.rs, timeout=30) as http:
            while not self.stop.is_set() and self.uncached:
                if self._one(http, "uncached", self.uncached[-1]) == 200:
                    self.uncached.pop()  # now cached: take a fresh one
                time.sleep(0.05)

    def _one(self, http: httpx.Client, kind: str, token: str) -> int:
        phase, started = self.phase, time.monotonic()
        response = http.get("/auth-api/hello", headers={"X-Access-Token": token})
        retry_after = response.headers.get("retry-after", "")
        self.records.append(
            (phase, kind, response.status_code, time.monotonic() - started, retry_after)
        )
        return response.status_code

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Two threads on the cached tokens, one on fresh ones; all joined afterwards."""
        targets = (self.run_cached, self.run_cached, self.run_uncached)
        workers = [threading.Thread(target=target, daemon=True) for target in targets]
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            self.stop.set()
            for worker in workers:
                worker.join(30)
                assert not worker.is_alive(), "a client hung"

    def of(self, kind: str, phase: str | None = None) -> list[tuple[int, float, str]]:
        """(status, seconds, Retry-After) of the requests of one kind, in one phase or all."""
        return [(s, t, r) for p, k, s, t, r in self.records if k == kind and phase in (None, p)]


def kill_and_restart(server: ServerProcess, traffic: Traffic) -> float:
    """SIGKILL the AS for 4 s, start it again; seconds until an uncached token passes again."""
    time.sleep(1.0)
    server.stop(kill=True)
    traffic.phase = "outage"
    time.sleep(4.0)
    traffic.phase = "restarting"  # not asserted: either answer is right meanwhile
    server.start()
    traffic.phase = "after"
    restarted = time.monotonic()
    while time.monotonic() - restarted < COOLDOWN + 10:
        if any(s == 200 for s, _, _ in traffic.of("uncached", "after")):
            break
        time.sleep(0.1)
    recovered = time.monotonic() - restarted
    time.sleep(1.0)
    return recovered


def test_authorization_server_killed_under_load(setup: Setup, tmp_path: Path) -> None:
    """AS SIGKILLed: cached tokens keep passing, uncached get 503 + Retry-After in bounded
    time, and when the AS is back the resource server recovers by itself (no restart)."""
    outage_ttl = ("--outage-cache-ttl", "60")  # longer than the outage: cached entries trusted
    with (
        running_server(setup.database, log_dir=tmp_path) as server,
        example_rs(setup.rs, tmp_path, "--issuer", server.issuer, *outage_ttl) as rs,
    ):
        cached = [issue(server, setup.app) for _ in range(10)]
        assert [timed(rs, token)[0].status_code for token in cached] == [200] * 10
        traffic = Traffic(rs, cached, [issue(server, setup.app) for _ in range(100)])
        with traffic.running():
            recovered = kill_and_restart(server, traffic)
        events = httpx.get(rs + "/public/status", timeout=5).json()["revocation_events"]

    assert {s for s, _, _ in traffic.of("cached")} == {200}, "a cached token was refused"
    assert len(traffic.of("cached", "outage")) > 20
    assert {s for s, _, _ in traffic.of("uncached", "outage")} == {503}
    for status, elapsed, retry_after in traffic.of("uncached"):
        assert status in (200, 503)
        assert elapsed <= TIMEOUT + MARGIN
        assert status == 200 or int(retry_after) >= 1
    after = [s for s, _, _ in traffic.of("uncached", "after")]
    assert 200 in after, f"no recovery within {recovered:.1f}s of the restart"
    assert set(after[after.index(200) :]) == {200}, "recovered, then failed again"
    assert_no_traceback(tmp_path)
    print(f"uncached tokens served again {recovered:.2f}s after the restart; events: {events}")
