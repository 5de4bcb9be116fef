"""Resource-server overhead (issue: resource-server library).

One run, loopback only, one authorization server (SQLite) and one example resource server:

1. Warm cache: wrk against the RS's unprotected `GET /public/ping` and its protected
   `GET /auth-api/hello` carrying a valid token in `X-Access-Token` (same server, same load
   generator, the token cached after the first call), alternating rounds. Ratio
   protected/unprotected, target >= 0.85.
2. Cache miss: sequential requests, alternating, of (a) `GET /auth-api/hello` with a token the
   RS has never seen (one introspection each) and (b) a direct introspection call to the AS
   with the RS's credentials, of another token nobody has introspected yet (so neither side
   finds the record in the AS's own token cache). Median latency of each and the ratio.

Beside each wall-clock figure, the CPU each process spent (from /proc/PID/task/*/schedstat), and
for the miss the time the RS and the AS waited runnable for a CPU: on a shared 2-core machine the
wall-clock ratios move with the load, the CPU per request hardly does.

    .venv/bin/python bench/rs_overhead.py [--rounds 5] [--seconds 5] [--connections 32] [--misses 300]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from _harness import (
    PROTECTED_PATH,
    TOKEN_HEADER,
    Row,
    Server,
    alternate,
    authorization_server,
    create_client,
    example_resource_server,
    fetch_token,
    fetch_tokens,
    introspect,
    median_ratio,
    run_wrk,
    scheduled,
    wrk_arguments,
    wrk_result,
    wrk_script,
)

from tokengate.resource.protocol.rfc7662 import ClientCredentials


def warm_cache_ratio(rs: Server, script: Path, args: argparse.Namespace) -> None:
    run_wrk(rs.url + "/public/ping", connections=args.connections, seconds=1)  # warm-up
    cpu: dict[str, list[float]] = {"unprotected": [], "protected": []}

    def case(name: str, path: str, script: Path | None = None) -> Callable[[], float]:
        def run() -> float:
            before = scheduled(rs.pid)[0]
            result = wrk_result(
                rs.url + path, connections=args.connections, seconds=args.seconds, script=script
            )
            cpu[name].append((scheduled(rs.pid)[0] - before) / result.requests * 1e6)
            return result.rps

        return run

    def report(index: int, row: Row) -> None:
        public, protected = row["unprotected"], row["protected"]
        print(f"round {index + 1}: unprotected {public:8.0f} rps, {cpu['unprotected'][-1]:5.1f} µs "
              f"CPU/request | protected (warm cache) {protected:8.0f} rps, {cpu['protected'][-1]:5.1f}"
              f" µs ({protected / public:.2f}x)", flush=True)  # fmt: skip

    cases = {
        "unprotected": case("unprotected", "/public/ping"),
        "protected": case("protected", PROTECTED_PATH, script),
    }
    ratio = median_ratio(alternate(cases, args.rounds, report=report), "protected", "unprotected")
    by_cpu = statistics.median(
        public / protected for public, protected in zip(*cpu.values(), strict=True)
    )
    print(f"protected (warm cache) / unprotected: {ratio:.3f}x  (target >= 0.85x) "
          f"{'PASS' if ratio >= 0.85 else 'MISS'}; by the RS's CPU per request (what the ratio is "
          f"when the RS has a core to itself): {by_cpu:.3f}x\n")  # fmt: skip


class Sampler:
    """Wall seconds per request, and per block of requests the caller's CPU and the RS's and the
    AS's CPU and time spent runnable but waiting for a CPU (/proc is read between blocks, while
    both servers are idle, so the deltas are the block's and the reading costs no request)."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.walls: dict[str, list[float]] = {}
        self.totals: dict[str, list[float]] = {}

    def block(self, name: str, calls: Sequence[Callable[[], object]]) -> None:
        before = [x for pid in self.pids for x in scheduled(pid)]
        cpu = time.thread_time()
        walls = self.walls.setdefault(name, [])
        for call in calls:
            started = time.perf_counter()
            call()
            walls.append(time.perf_counter() - started)
        cpu = time.thread_time() - cpu
        after = [x for pid in self.pids for x in scheduled(pid)]
        deltas = [cpu, *(b - a for a, b in zip(before, after, strict=True))]
        totals = self.totals.setdefault(name, [0.0] * len(deltas))
        self.totals[name] = [t + d for t, d in zip(totals, deltas, strict=True)]

    def wall(self, name: str) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.walls[name])

    def means(self, name: str) -> list[float]:
        """Mean µs: the caller's CPU, then (CPU, run-queue wait) for each process."""
        return [total / len(self.walls[name]) * 1e6 for total in self.totals[name]]


def miss_latency(
    auth: Server, rs: Server, client: ClientCredentials, rs_client: ClientCredentials, misses: int
) -> None:
    with httpx.Client(timeout=10) as http:
        # Each token is presented once, through the RS or directly, so both sides of a pair
        # make the authorization server read a token record it has not cached yet.
        fresh = asyncio.run(fetch_tokens(auth.url, client, 2 * misses))
        cached = fetch_token(auth.url, client, http)
        assert http.get(rs.url + PROTECTED_PATH, headers={TOKEN_HEADER: cached}).is_success
        sampler = Sampler(rs.pid, auth.pid)
        through_rs, directly = fresh[::2], fresh[1::2]
        for start in range(0, misses, _BLOCK):
            tokens = through_rs[start : start + _BLOCK]
            sampler.block("miss", [functools.partial(_get, http, rs.url, t) for t in tokens])
            tokens = directly[start : start + _BLOCK]
            sampler.block(
                "direct", [functools.partial(_introspect, http, auth, rs_client, t) for t in tokens]
            )
            sampler.block("hit", [functools.partial(_get, http, rs.url, cached)] * len(tokens))
    miss, base, hit = (sampler.wall(name) * 1000 for name in ("miss", "direct", "hit"))
    print(f"through the RS: cache miss median {miss:.2f} ms, warm hit {hit:.2f} ms | direct "
          f"introspection call: median {base:.2f} ms (n={misses} each, interleaved)")  # fmt: skip
    print("mean µs per request   caller CPU | RS CPU, waiting for a CPU | AS CPU, waiting")
    for name, label in (("miss", "miss through the RS"), ("direct", "direct introspection"),
                        ("hit", "warm hit")):  # fmt: skip
        caller, rs_cpu, rs_wait, as_cpu, as_wait = sampler.means(name)
        print(f"  {label:20s} {caller:9.0f} | {rs_cpu:6.0f} {rs_wait:8.0f} | {as_cpu:6.0f} "
              f"{as_wait:8.0f}")  # fmt: skip
    added = sampler.means("miss")[1] - sampler.means("hit")[1]
    print(f"RS CPU the miss adds: {added:.0f} µs; the AS's CPU for a direct introspection: "
          f"{sampler.means('direct')[3]:.0f} µs")  # fmt: skip
    print(f"cache miss / direct introspection: {miss / base:.2f}x  (target <= 1.3x) "
          f"{'PASS' if miss / base <= 1.3 else 'MISS'}")  # fmt: skip
    print(f"what the miss adds to a request (miss - warm hit) / direct introspection: "
          f"{(miss - hit) / base:.2f}x")  # fmt: skip


_BLOCK = 10  # requests per block: /proc is read between blocks


def _get(http: httpx.Client, rs_url: str, token: str) -> None:
    """One protected request through the RS (asserting it was let through)."""
    response = http.get(rs_url + PROTECTED_PATH, headers={TOKEN_HEADER: token})
    assert response.status_code == 200, response.text


def _introspect(http: httpx.Client, auth: Server, rs: ClientCredentials, token: str) -> None:
    assert introspect(auth.url, rs, token, http)["active"] is True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    wrk_arguments(parser)
    parser.add_argument("--misses", type=int, default=300)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-rs-bench-"))
    db = f"sqlite:///{tmp / 'rs.db'}"
    client = create_client(db, "svc", scope="read write")
    rs = create_client(db, "rs", introspect=True)
    with authorization_server(db) as auth, example_resource_server(auth.url, rs) as resource:
        with httpx.Client(timeout=10) as http:
            value = fetch_token(auth.url, client, http)
            warm = http.get(resource.url + PROTECTED_PATH, headers={TOKEN_HEADER: value})
            assert warm.status_code == 200, warm.text
        warm_cache_ratio(resource, wrk_script(tmp, "hello", {TOKEN_HEADER: value}), args)
        miss_latency(auth, resource, client, rs, args.misses)


if __name__ == "__main__":
    main()
