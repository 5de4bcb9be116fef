"""Revocation push latency under load (issue: instant revocation with caching).

One run, loopback only: one authorization server (SQLite by default; `--database` for
PostgreSQL, `--replicas 2` for two replicas on it), two example resource servers caching for the
whole token lifetime (`--cache-max-ttl 3600`) and following the revocation events of replica
`i % replicas`. A load process keeps a steady request rate on both resource servers with many
valid tokens; meanwhile 200 other tokens (each cached at both) are revoked one by one, spaced
out, alternating replicas. For each, the time from the revocation's 200 to the first 401 seen at
each resource server (polling that token in a tight loop) is recorded.

    .venv/bin/python bench/revocation_latency.py [--database URL] [--replicas 2]
        [--revocations 200] [--tokens 1000] [--rate 250]

Prints p50/p90/p99/max per resource server and overall, the load served, and introspection calls
per resource server vs distinct tokens. Target p99 < 1 s, goal 100 ms; introspection ≈ 1 per
token (plus one per revoked token: the request that gets the 401 asks the server again).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    PROTECTED_PATH,
    PY,
    TOKEN_HEADER,
    authorization_server,
    basic,
    create_client,
    example_resource_server,
    fetch_tokens,
    warm_resource_servers,
)

from tokengate.core.wire import REVOKE_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

TOKEN_LIFETIME = 3600
POLL_TIMEOUT = 5.0


@contextlib.contextmanager
def authorization_servers(db: str, count: int) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(authorization_server(db)).url for _ in range(count)]


@contextlib.contextmanager
def resource_servers(issuers: list[str], rs: ClientCredentials) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        servers = (
            example_resource_server(issuer, rs, cache_max_ttl=TOKEN_LIFETIME) for issuer in issuers
        )
        yield [stack.enter_context(server).url for server in servers]


async def status(http: httpx.AsyncClient, rs: str) -> dict[str, Any]:
    document: dict[str, Any] = (await http.get(rs + "/public/status")).json()
    return document


async def wait_live(http: httpx.AsyncClient, servers: list[str]) -> None:
    deadline = time.monotonic() + 30
    for rs in servers:
        while (await status(http, rs))["revocation_events"]["state"] != "live":
            if time.monotonic() > deadline:
                raise SystemExit(f"{rs} never caught up with its revocation events")
            await asyncio.sleep(0.05)


async def call(http: httpx.AsyncClient, rs: str, token: str, path: str = PROTECTED_PATH) -> int:
    response = await http.get(rs + path, headers={TOKEN_HEADER: token})
    return response.status_code


async def first_401(
    http: httpx.AsyncClient, rs: str, token: str, since: float, path: str = PROTECTED_PATH
) -> float:
    while time.perf_counter() - since < POLL_TIMEOUT:
        if await call(http, rs, token, path) == 401:
            return time.perf_counter() - since
    return float("inf")


async def measure(
    http: httpx.AsyncClient,
    replicas: list[str],
    servers: list[str],
    app: ClientCredentials,
    doomed: list[str],
) -> list[list[float]]:
    latencies: list[list[float]] = [[] for _ in servers]
    for i, token in enumerate(doomed):
        revoke = replicas[i % len(replicas)] + REVOKE_PATH
        response = await http.post(revoke, data={"token": token}, headers=basic(app))
        since = time.perf_counter()
        response.raise_for_status()
        found = await asyncio.gather(*(first_401(http, rs, token, since) for rs in servers))
        for index, seconds in enumerate(found):
            latencies[index].append(seconds)
        await asyncio.sleep(random.uniform(0.05, 0.15))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def row(name: str, values: list[float]) -> str:
    cells = [percentile(values, q) for q in (0.5, 0.9, 0.99)] + [max(values)]
    return f"{name:<10}" + "".join(f"{v * 1000:>10.1f}" for v in cells) + f"{len(values):>8}"


# --- load process: `revocation_latency.py --load-worker FILE`, SIGTERM → JSON counts ---------


async def load(
    servers: list[str], tokens: list[str], rate: float, connections: int, path: str
) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counts: dict[str, Counter[int]] = {rs: Counter() for rs in servers}
    limits = httpx.Limits(max_connections=connections * len(servers))
    started = time.monotonic()

    async def worker(rs: str, offset: int) -> None:
        interval, turn = connections / rate, 0
        while not stop.is_set():
            token = tokens[(offset + turn * connections) % len(tokens)]
            try:
                counts[rs][await call(http, rs, token, path)] += 1
            except httpx.HTTPError:
                counts[rs][0] += 1
            turn += 1
            delay = started + turn * interval - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async with httpx.AsyncClient(limits=limits, timeout=10) as http:
        await asyncio.gather(*(worker(rs, i) for rs in servers for i in range(connections)))
    elapsed = time.monotonic() - started
    report = {rs: {"seconds": elapsed, "statuses": dict(c)} for rs, c in counts.items()}
    print(json.dumps(report), flush=True)


def run_load_worker(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    asyncio.run(
        load(spec["servers"], spec["tokens"], spec["rate"], spec["connections"], spec["path"])
    )


def start_load(
    tmp: Path, servers: list[str], tokens: list[str], rate: float, path: str = PROTECTED_PATH
) -> Any:
    spec = tmp / "load.json"
    document = {"servers": servers, "tokens": tokens, "rate": rate, "connections": 8, "path": path}
    spec.write_text(json.dumps(document))
    args = [PY, str(Path(__file__).resolve()), "--load-worker", str(spec)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def stop_load(proc: Any) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path, db: str) -> None:
    app = create_client(db, "bench-app", scope="read", token_ttl=TOKEN_LIFETIME)
    rs = create_client(db, "bench-rs", scope="", introspect=True)
    with authorization_servers(db, args.replicas) as replicas:
        issuers = [replicas[i % len(replicas)] for i in range(2)]
        with resource_servers(issuers, rs) as servers:
            async with httpx.AsyncClient(timeout=10) as http:
                await wait_live(http, servers)
                count = args.tokens + args.revocations
                tokens = await fetch_tokens(replicas[0], app, count, scope="read")
                steady, doomed = tokens[: args.tokens], tokens[args.tokens :]
                await warm_resource_servers(servers, tokens)
                before = [(await status(http, s))["stats"] for s in servers]
                loader = start_load(tmp, servers, steady, args.rate)
                await asyncio.sleep(2)
                started = time.monotonic()
                latencies = await measure(http, replicas, servers, app, doomed)
                took = time.monotonic() - started
                load_report = stop_load(loader)
                after = [(await status(http, s))["stats"] for s in servers]
    report(args, db, servers, latencies, took, load_report, before, after, len(tokens))


def report(
    args: argparse.Namespace,
    db: str,
    servers: list[str],
    latencies: list[list[float]],
    took: float,
    load_report: dict[str, Any],
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    distinct: int,
) -> None:
    kind = db.split(":", maxsplit=1)[0]
    print(
        f"\n{args.revocations} revocations in {took:.1f}s (spaced 50-150 ms, alternating replicas)"
        f" | AS: {kind} x{args.replicas} | 2 resource servers, --cache-max-ttl {TOKEN_LIFETIME}"
    )
    print("\nrevocation 200 -> first 401 at the resource server (ms)")
    print(f"{'':<10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}{'n':>8}")
    for index, values in enumerate(latencies):
        follows = f"rs-{index}"
        print(row(follows, values) + f"   (follows replica {index % args.replicas})")
    overall = [v for values in latencies for v in values]
    print(row("overall", overall))
    missed = sum(1 for v in overall if v == float("inf"))
    print(f"no 401 within {POLL_TIMEOUT:.0f}s: {missed}")
    print("\nsteady load (valid tokens only)")
    for index, rs in enumerate(servers):
        entry = load_report[rs]
        total = sum(entry["statuses"].values())
        print(
            f"rs-{index}: {total / entry['seconds']:.0f} req/s for {entry['seconds']:.0f}s,"
            f" statuses {entry['statuses']}"
        )
    print("\nintrospection calls (resource-server stats)")
    for index, (b, a) in enumerate(zip(before, after, strict=True)):
        warmed, extra = (
            b["introspection_calls"],
            a["introspection_calls"] - b["introspection_calls"],
        )
        lag = a["revocation_lag_seconds_sum"] / max(1, a["revocation_lag_seconds_count"])
        print(
            f"rs-{index}: {warmed:.0f} for {distinct} distinct tokens ({warmed / distinct:.2f} per"
            f" token); under load +{extra:.0f} for {args.revocations} revoked tokens (the first"
            " request after each eviction asks again)"
        )
        print(
            f"      events applied {a['revocation_events_applied']:.0f}, stream reconnects"
            f" {a['revocation_stream_reconnects']:.0f}, mean receive - occurred_at"
            f" {lag * 1000:.0f} ms (occurred_at is whole seconds)"
        )
    p99 = percentile(overall, 0.99)
    print(
        f"\np99 {p99 * 1000:.1f} ms: target < 1 s {'PASS' if p99 < 1 else 'MISS'},"
        f" goal < 100 ms {'PASS' if p99 < 0.1 else 'MISS'}"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--load-worker":
        run_load_worker(sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--replicas", type=int, default=1, choices=[1, 2])
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=1000, help="valid tokens in the load")
    parser.add_argument("--rate", type=float, default=250, help="requests/s per resource server")
    args = parser.parse_args()
    if args.replicas > 1 and not (args.database or "").startswith("postgres"):
        parser.error("--replicas 2 needs --database postgresql://...")
    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    asyncio.run(run(args, tmp, db))


if __name__ == "__main__":
    main()
