"""Revocation-event fan-out to many subscribers of one `tokengate serve` process (issue: scale).

For each N (default 100, 1,000, 10,000): a fresh authorization server (SQLite) and a separate
subscriber process holding N `GET /oauth2/events` streams (raw non-blocking sockets on one
`epoll`, a few microseconds per frame, so the client side costs little), all caught up (`sync`
seen). Then `--revocations` tokens are revoked one at a time through `POST /oauth2/revoke`; each
subscriber stamps the moment each revocation frame reaches it (CLOCK_MONOTONIC, shared by the
processes). Printed per N, over all subscribers and revocations: the latency after the
revocation's 200 arrived here (p50/p99/max; the minimum is often negative: the hub polls the log
and may deliver before the 200 is written) and after the request was sent; the memory per
subscriber (server RSS with the N streams open minus before, over N); and the server's CPU time
per event and subscriber (the CPU used in a window after the revocation minus that of a quiet
window as long before it: heartbeats), which on a shared machine says more than wall time.

`--baseline SRC` runs a second server from another source tree (e.g. `/work/main/src`, the code
before the shared fan-out) beside it, with its own subscribers, revocations alternating A B A B;
the median over revocations of the per-revocation p99 ratio baseline ÷ this tree is printed.

    .venv/bin/python bench/fanout.py [--sizes 100,1000,10000] [--revocations 7]
        [--baseline /work/main/src]

Targets: 1,000 subscribers p99 < 50 ms, 10,000 p99 < 250 ms. The soft RLIMIT_NOFILE is raised to
the hard limit first (each stream is a descriptor in the server and one in the subscriber).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _harness import PY, basic, create_client, fetch_token, serve_command, server

from tokengate.core.wire import EVENTS_PATH, REVOKE_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

CONNECT_BATCH = 250  # subscriptions in flight at once while connecting
_REVOCATION = re.compile(rb"id: (\d+)\nevent: revocation\n")
_SYNC = b"event: sync\n"


# -- the subscriber process: `fanout.py --subscribe HOST PORT N` (credentials in env) ----------


@dataclass
class Stream:
    """One subscriber connection's reading state."""

    sock: socket.socket
    synced: bool = False
    tail: bytes = b""
    seen: dict[int, int] = field(default_factory=dict)  # position → arrival (ns)


def subscribe(host: str, port: int, count: int) -> None:
    """Open `count` streams, say `ready`, stamp revocation frames until told `report`. A stream
    the server closes while connecting is opened again (as a real subscriber would)."""
    request = (
        f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: {os.environ['FANOUT_AUTHORIZATION']}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    poller = select.epoll()
    streams: dict[int, Stream] = {}
    pending = reopened = 0
    while len(streams) < count or pending:
        while pending < CONNECT_BATCH and len(streams) < count:
            sock = socket.create_connection((host, port))
            sock.sendall(request)
            sock.setblocking(False)
            streams[sock.fileno()] = Stream(sock)
            poller.register(sock.fileno(), select.EPOLLIN)
            pending += 1
        for fd, _ in poller.poll(1.0):
            stream = streams[fd]
            data = stream.sock.recv(65536)
            if not data:
                poller.unregister(fd)
                stream.sock.close()
                del streams[fd]
                reopened += 1
                pending -= not stream.synced
                continue
            if not stream.synced and _SYNC in stream.tail + data:
                stream.synced = True
                pending -= 1
            stream.tail = (stream.tail + data)[-256:]
    print(f"ready {reopened}", flush=True)
    follow(poller, streams)


def follow(poller: select.epoll, streams: dict[int, Stream]) -> None:
    """Stamp each revocation frame's first arrival per stream; on `report` print them as JSON
    (a stream the server closed meanwhile reports what it had received)."""
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.EPOLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == stdin:
                sys.stdin.readline()
                print(json.dumps([stream.seen for stream in streams.values()]), flush=True)
                return
            now = time.monotonic_ns()
            stream = streams[fd]
            data = stream.sock.recv(65536)
            if not data:
                poller.unregister(fd)
                continue
            window = stream.tail + data
            for match in _REVOCATION.finditer(window):
                stream.seen.setdefault(int(match.group(1)), now)
            stream.tail = window[-256:]


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Setup:
    """One server under test with its subscribers."""

    name: str
    url: str
    pid: int
    app: ClientCredentials
    rs: ClientCredentials
    subscribers: subprocess.Popen[str] | None = None
    # position → (revocation request sent, its 200 arrived), CLOCK_MONOTONIC ns
    revoked: dict[int, tuple[int, int]] = field(default_factory=dict)
    reopened: int = 0  # streams the server closed while they connected
    missed: int = 0  # revocation frames a subscriber never received
    rss_before: int = 0
    rss_after: int = 0
    # server CPU seconds per revocation (issue, revoke, fan-out), heartbeats subtracted
    cpu_per_event: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """CPU time the process's main thread has used (the event loop; nanosecond resolution)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmRSS for {pid}")


@contextlib.contextmanager
def server_under_test(name: str, source: str | None, directory: Path) -> Iterator[Setup]:
    """A fresh database with an app client, and `tokengate serve` from `source` (None: here)."""
    db = f"sqlite:///{directory / f'{name}.db'}"
    app = create_client(db, "app", token_ttl=3600)
    rs = create_client(db, "rs", scope="", introspect=True)
    extra = ("--max-event-streams", "100000") if source is None else ()  # the default: 10,000
    env = {"PYTHONPATH": source} if source is not None else {}
    with server(lambda port: serve_command(port, db, *extra), "/healthz", env) as running:
        yield Setup(name, running.url, running.pid, app, rs)


def connect(setup: Setup, count: int) -> None:
    """Start the subscriber process for `setup`, wait until its `count` streams are caught up."""
    _warm(setup)
    setup.rss_before = rss_bytes(setup.pid)
    host, port = setup.url.removeprefix("http://").split(":")
    command = [PY, __file__, "--subscribe", host, port, str(count)]
    env = {**os.environ, "FANOUT_AUTHORIZATION": setup.rs.basic_authorization()}
    setup.subscribers = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert setup.subscribers.stdout is not None
    ready, _, reopened = setup.subscribers.stdout.readline().partition(" ")
    if ready != "ready":
        raise SystemExit(f"{setup.name}: the subscribers did not get ready")
    setup.reopened = int(reopened)
    time.sleep(0.5)
    setup.rss_after = rss_bytes(setup.pid)


def _warm(setup: Setup) -> None:
    """One stream opened and closed, so code paths and caches count as the server's base."""
    headers = basic(setup.rs)
    with httpx.stream("GET", setup.url + EVENTS_PATH, headers=headers, timeout=10) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: sync"):
                break


def revoke_one(setup: Setup, http: httpx.Client) -> None:
    """Issue a token, revoke it, note when the 200 came and at which event position."""
    token = fetch_token(setup.url, setup.app, http)
    sent = time.monotonic_ns()
    response = http.post(setup.url + REVOKE_PATH, data={"token": token}, headers=basic(setup.app))
    arrived = time.monotonic_ns()
    response.raise_for_status()
    setup.revoked[len(setup.revoked) + 1] = (sent, arrived)  # positions count from 1 on a new db


@dataclass(frozen=True)
class Latencies:
    """Per revocation position, every subscriber's frame arrival in ms after the revocation's
    200 (negative: the frame came first; the hub polls the log while the request finishes)
    and after the revocation request was sent."""

    after_200: dict[int, list[float]]
    after_request: dict[int, list[float]]


def latencies(setup: Setup) -> Latencies:
    """Collect the subscriber process's stamps."""
    process = setup.subscribers
    assert process is not None
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("report\n")
    process.stdin.flush()
    streams: list[dict[str, int]] = json.loads(process.stdout.readline())
    process.wait(30)
    result = Latencies({}, {})
    for position, (sent, revoked) in setup.revoked.items():
        arrivals = [seen[str(position)] for seen in streams if str(position) in seen]
        setup.missed += len(streams) - len(arrivals)
        result.after_200[position] = [(a - revoked) / 1e6 for a in arrivals]
        result.after_request[position] = [(a - sent) / 1e6 for a in arrivals]
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(size: int, revocations: int, baseline: str | None, directory: Path) -> None:
    """Every system at `size` subscribers, revocations alternating between systems."""
    names = ["fanout"] + (["baseline"] if baseline else [])
    # Room for the slower system's whole fan-out between revocations (main: ~0.35 ms each).
    pause = 0.3 + size * (0.0006 if baseline else 0.0001)
    with contextlib.ExitStack() as stack:
        setups = [
            stack.enter_context(server_under_test(f"{name}-{size}", source, directory))
            for name, source in zip(names, [None, baseline], strict=False)
        ]
        for setup in setups:
            connect(setup, size)
        with httpx.Client(timeout=30) as http:
            for _ in range(revocations):
                for setup in setups:
                    idle = cpu_seconds(setup.pid)
                    time.sleep(pause)  # heartbeats only: subtracted from the next window
                    before = cpu_seconds(setup.pid)
                    revoke_one(setup, http)
                    time.sleep(pause)
                    quiet = before - idle
                    setup.cpu_per_event.append(cpu_seconds(setup.pid) - before - quiet)
        time.sleep(pause)
        results = {setup.name: latencies(setup) for setup in setups}
    for setup in setups:
        report(setup, size, results[setup.name])
    if baseline:
        fan, base = (results[s.name].after_request for s in setups)
        ratio = statistics.median(p99(base[p]) / p99(fan[p]) for p in fan)
        print(f"{'':>16}  N={size:>6}  p99 (from the request) baseline / fan-out, median over"
              f" revocations: {ratio:.1f}x", flush=True)  # fmt: skip


def p99(values: list[float]) -> float:
    return percentile(values, 0.99)


def report(setup: Setup, size: int, result: Latencies) -> None:
    after_200 = [ms for values in result.after_200.values() for ms in values]
    after_request = [ms for values in result.after_request.values() for ms in values]
    per_subscriber = (setup.rss_after - setup.rss_before) / size / 1024
    cpu = statistics.median(setup.cpu_per_event) / size * 1e6
    print(f"{setup.name:>16}: N={size:>6}  after the 200: p50 {percentile(after_200, 0.5):7.1f}"
          f" p99 {p99(after_200):7.1f} max {max(after_200):7.1f} min {min(after_200):6.1f} ms;"
          f"  after the request: p50 {percentile(after_request, 0.5):7.1f}"
          f" p99 {p99(after_request):7.1f} ms;  {per_subscriber:5.1f} KiB and {cpu:5.1f} µs of"
          f" server CPU per subscriber; {setup.reopened} streams closed while connecting,"
          f" {setup.missed} frames never received",
          flush=True)  # fmt: skip


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--revocations", type=int, default=7)
    parser.add_argument("--baseline", help="another source tree to run beside (PYTHONPATH)")
    parser.add_argument(
        "--subscribe", nargs=3, metavar=("HOST", "PORT", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    raise_fd_limit()
    if args.subscribe:
        host, port, count = args.subscribe
        subscribe(host, int(port), int(count))
        return
    needed = 2 * max(int(s) for s in args.sizes.split(",")) + 100
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed // 2:
        raise SystemExit(f"RLIMIT_NOFILE too low for {needed // 2} streams per process")
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as directory:
        for size in (int(s) for s in args.sizes.split(",")):
            measure(size, args.revocations, args.baseline, Path(directory))


if __name__ == "__main__":
    main()
