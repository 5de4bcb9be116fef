"""Abusive clients on loopback, and the legitimate client that must keep being answered meanwhile.

Every attack is bounded in count and time and stops by itself. Raw sockets (asyncio streams),
not an HTTP library: the point is to send what no well-behaved client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"


@dataclass
class Probe:
    """What the legitimate client saw: latencies (ms) of good answers, and every failure."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def p99(self) -> float:
        """The 99th percentile latency in ms (the maximum below 100 samples)."""
        if len(self.latencies) < 100:
            return max(self.latencies)
        return statistics.quantiles(self.latencies, n=100)[98]

    def check(self, name: str, minimum: int = 5) -> None:
        """Print the count and p99; fail on any failure or on too few answers."""
        print(f"{name}: legitimate client {len(self.latencies)} answers, p99 {self.p99:.1f} ms")
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= minimum


@contextlib.contextmanager
def legitimate_client(
    url: str, headers: Mapping[str, str] | None = None, *, verify: str | None = None
) -> Iterator[Probe]:
    """GET `url` one request after another, each on a new connection (the hardest case when
    descriptors run short), from a process of its own (no GIL shared with the attackers), from
    its first answer until the block ends; each must be a 200 within 5 s."""
    args = [sys.executable, "-m", "tests.support.abuse", url, json.dumps(dict(headers or {}))]
    args += [verify] if verify is not None else []
    client = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    probe = Probe()
    try:
        ready = client.stdout.readline()  # after its first request, answered or not
        assert ready.strip() == "ready", ready
        yield probe
    finally:
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=30)
        seen = json.loads(out)
        probe.latencies, probe.failures = seen["latencies"], seen["failures"]


def _client_main(url: str, headers: dict[str, str], verify: str | bool = True) -> None:
    """The legitimate client's process: requests until SIGTERM, then a JSON report."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    latencies: list[float] = []
    failures: list[str] = []
    first = True
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for every request
    http = httpx.Client(headers=headers, timeout=5.0, verify=verify, limits=fresh)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = http.get(url)
        except httpx.HTTPError as exc:
            failures.append(repr(exc))
        else:
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1e3)
            else:
                failures.append(f"status {response.status_code}")
        if first:
            latencies, failures, first = [], [], False  # warm-up: imports, first connection
            print("ready", flush=True)
        stop.wait(0.02)
    print(json.dumps({"latencies": latencies, "failures": failures}), flush=True)


def head_start(path: str = "/healthz") -> bytes:
    """The request line and Host of a GET, the head left open for more fields."""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n".encode()


async def send_and_read(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` on a new connection and read until the server closes (or `timeout`)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
        return await _read_to_close(reader, timeout)
    finally:
        writer.close()


async def _read_to_close(reader: asyncio.StreamReader, timeout: float) -> bytes:
    received = bytearray()
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                received += chunk
    return bytes(received)


def status_of(answer: bytes) -> int | None:
    """The status code of a raw HTTP/1.1 answer, None if there is none."""
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


async def trickle(port: int, interval: float, limit: float) -> tuple[float, bytes]:
    """Slowloris: a header value one byte every `interval` s, never finished; how long the
    server kept the connection open (at most `limit` s) and what it answered."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started, answer = time.monotonic(), b""
    try:
        writer.write(head_start() + b"X-Slow: ")
        while time.monotonic() - started < limit:
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
            try:
                async with asyncio.timeout(interval):
                    answer = await reader.read(65536)
            except TimeoutError:
                continue  # nothing yet: still open
            except ConnectionError:
                break
            answer += await _read_to_close(reader, 2.0)
            break
        return time.monotonic() - started, answer
    finally:
        writer.close()


async def hold_unfinished_heads(port: int, count: int, size: int) -> list[bytes]:
    """`count` connections each sending a `size`-byte header value that never ends."""
    value = b"a" * size
    return list(
        await asyncio.gather(
            *(send_and_read(port, head_start() + b"X-Big: " + value) for _ in range(count))
        )
    )


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def rss_mib(pid: int) -> float:
    """The process's resident set size now (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


if __name__ == "__main__":
    _client_main(sys.argv[1], json.loads(sys.argv[2]), *sys.argv[3:4])
