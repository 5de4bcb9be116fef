"""`tokengate serve --workers 2` ÷ `--workers 1`: introspection and token issuance (issue 14).

Both servers run side by side on one fresh SQLite file (or `--database`); each round runs wrk
(one thread, N connections) against 1 worker then 2 workers, for introspection then issuance,
so drift and the other load on the machine hit both alike. The report is the median per-round
ratio, with the load average seen at each round and the cores each server's processes used
(CPU seconds ÷ wall seconds): on a shared machine 2 workers cannot scale past the cores left.

    .venv/bin/python bench/workers.py [--database URL] [--rounds 7] [--seconds 2] [--connections 32]

Target: introspection with 2 workers ≥ 1.6x 1 worker on a 2-core machine.
"""

from __future__ import annotations

import argparse
import collections
import functools
import http.client
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from _harness import (
    Row,
    alternate,
    authorization_server,
    basic,
    column,
    create_client,
    fetch_token,
    introspect,
    median_ratio,
    run_wrk,
    tree_cpu_seconds,
    wrk_arguments,
    wrk_post_script,
)

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH

TARGET = 1.6


def workers_answering(url: str, expected: int, timeout: float = 20.0) -> collections.Counter[int]:
    """Which worker answers each of 32 new connections, once all `expected` workers do."""
    host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 80
    deadline = time.monotonic() + timeout
    while True:
        seen: collections.Counter[int] = collections.Counter()
        connections = [http.client.HTTPConnection(host, port, timeout=5) for _ in range(32)]
        for conn in connections:
            conn.request("GET", "/healthz")
            seen[json.loads(conn.getresponse().read()).get("worker", 0)] += 1
        for conn in connections:
            conn.close()
        if len(seen) == expected:
            return seen
        if time.monotonic() > deadline:
            raise SystemExit(f"only workers {sorted(seen)} of {expected} answered")
        time.sleep(0.2)


CORES_USED: dict[str, list[float]] = collections.defaultdict(list)


def measured(name: str, pid: int, run: Callable[[], float]) -> Callable[[], float]:
    """`run`, noting the cores the server process tree used meanwhile (CPU s ÷ wall s)."""

    def sample() -> float:
        cpu, wall = tree_cpu_seconds(pid), time.monotonic()
        rps = run()
        CORES_USED[name].append((tree_cpu_seconds(pid) - cpu) / (time.monotonic() - wall))
        return rps

    return sample


def print_round(index: int, row: Row) -> None:
    load = os.getloadavg()[0]
    print(
        f"round {index + 1}: introspect {row['introspect-1']:7.0f} → {row['introspect-2']:7.0f} rps"
        f" ({row['introspect-2'] / row['introspect-1']:.2f}x) | token {row['token-1']:6.0f} →"
        f" {row['token-2']:6.0f} rps ({row['token-2'] / row['token-1']:.2f}x) | load {load:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    wrk_arguments(parser, rounds=7, seconds=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-workers-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db, "bench", scope="read write")
    rs = create_client(db, "bench-rs", scope="read write", introspect=True)
    load_before = os.getloadavg()
    with (
        authorization_server(db, "--workers", "1") as one,
        authorization_server(db, "--workers", "2") as two,
    ):
        spread = workers_answering(two.url, 2)
        token = fetch_token(one.url, client)
        assert introspect(one.url, rs, token)["active"] is True
        assert introspect(two.url, rs, token)["active"] is True
        intro_lua = wrk_post_script(tmp, "introspect", f"token={token}", basic(rs))
        token_lua = wrk_post_script(tmp, "token", "grant_type=client_credentials", basic(client))
        wrk = functools.partial(run_wrk, connections=args.connections, seconds=args.seconds)
        for server in (one, two):  # warm-up: caches filled, every worker answering
            run_wrk(server.url + INTROSPECT_PATH, connections=args.connections, seconds=1,
                    script=intro_lua)  # fmt: skip
        runs = {
            "introspect-1": (
                one,
                functools.partial(wrk, one.url + INTROSPECT_PATH, script=intro_lua),
            ),
            "introspect-2": (
                two,
                functools.partial(wrk, two.url + INTROSPECT_PATH, script=intro_lua),
            ),
            "token-1": (one, functools.partial(wrk, one.url + TOKEN_PATH, script=token_lua)),
            "token-2": (two, functools.partial(wrk, two.url + TOKEN_PATH, script=token_lua)),
        }
        cases = {name: measured(name, server.pid, run) for name, (server, run) in runs.items()}
        rows = alternate(cases, args.rounds, report=print_round)
    r_intro = median_ratio(rows, "introspect-2", "introspect-1")
    r_token = median_ratio(rows, "token-2", "token-1")
    print(f"\ndatabase: {db.split(':')[0]}, connections: {args.connections}, rounds: {args.rounds},"
          f" cores: {len(os.sched_getaffinity(0))}")  # fmt: skip
    print(f"connections of 32 per worker (2 workers): {dict(sorted(spread.items()))}")
    print(f"load average (1 min) before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    for name, used in CORES_USED.items():
        print(f"{name}: median {statistics.median(column(rows, name)):.0f} rps,"
              f" server processes used {statistics.median(used):.2f} cores")  # fmt: skip
    for case in ("introspect", "token"):
        per_core = [
            row[f"{case}-2"] / two_cores / (row[f"{case}-1"] / one_cores)
            for row, two_cores, one_cores in zip(
                rows, CORES_USED[f"{case}-2"], CORES_USED[f"{case}-1"], strict=True
            )
        ]
        print(f"{case}: rps per core the server used, 2 workers / 1 worker:"
              f" {statistics.median(per_core):.2f}x (1.00x: each core added scales linearly)")  # fmt: skip
    verdict = "PASS" if r_intro >= TARGET else "MISS"
    print(f"introspection 2 workers / 1 worker: {r_intro:.2f}x  (target >= {TARGET}x) {verdict}")
    print(f"token issuance 2 workers / 1 worker: {r_token:.2f}x")


if __name__ == "__main__":
    main()
