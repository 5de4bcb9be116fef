"""What the connection and request-head limits cost (issue: hold under abuse).

The same bare ASGI hello-world three ways, rounds shuffled so drift hits all alike (wrk, one
thread, keep-alive):

  stock:   uvicorn + httptools as it comes (no head limit, no head deadline, no cap);
  limited: tokengate's serving setup (`tokengate.serving`: the httptools protocol with
           `ServerLimits` enforced), what every tokengate server runs;
  h11:     uvicorn's pure-Python h11 parser with its head limit (`h11_max_incomplete_event_size`).

Two figures per case: requests/second, and the server's CPU time per request (from /proc; far
less sensitive to other load on the machine than throughput).

    .venv/bin/python bench/serving_limits.py [--rounds 5] [--seconds 5] [--connections 32]

Target: limited / stock within noise (throughput >= 0.95x, CPU per request <= 1.05x).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
from collections.abc import Callable

from _harness import (
    Row,
    Server,
    alternate,
    column,
    cpu_seconds,
    hello_server,
    limited_hello_server,
    parse_wrk,
    wrk_command,
)

CASES = ("stock", "limited", "h11")


def measure(
    server: Server, connections: int, seconds: float, cpu: dict[str, list[float]], name: str
) -> float:
    """One wrk run: its requests/second; the server's CPU µs per request goes into `cpu`."""
    before = cpu_seconds(server.pid)
    command = wrk_command(server.url + "/", connections=connections, seconds=seconds)
    result = parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    if result.errors:
        raise SystemExit(f"wrk saw errors against {name}: {result.errors}")
    cpu[name].append((cpu_seconds(server.pid) - before) / result.requests * 1e6)
    return result.rps


def print_round(cpu: dict[str, list[float]]) -> Callable[[int, Row], None]:
    def report(index: int, row: Row) -> None:
        parts = [f"{name} {row[name]:7.0f} rps {cpu[name][index]:5.1f} µs" for name in CASES]
        print(f"round {index + 1}: " + " | ".join(parts), flush=True)

    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {name: [] for name in CASES}
    with (
        hello_server() as stock,
        limited_hello_server() as limited,
        hello_server(http="h11") as h11,
    ):
        servers = {"stock": stock, "limited": limited, "h11": h11}
        scratch: dict[str, list[float]] = {name: [] for name in CASES}
        for name, server in servers.items():  # warm-up
            measure(server, args.connections, 1, scratch, name)
        cases = {
            name: functools.partial(measure, server, args.connections, args.seconds, cpu, name)
            for name, server in servers.items()
        }
        rows = alternate(cases, args.rounds, shuffle=True, report=print_round(cpu))
    print(f"\nconnections: {args.connections}, rounds: {args.rounds}")
    print(f"median stock hello-world: {statistics.median(column(rows, 'stock')):.0f} rps")
    for name in ("limited", "h11"):
        rps = statistics.median(r[name] / r["stock"] for r in rows)
        per_request = statistics.median(
            mine / base for mine, base in zip(cpu[name], cpu["stock"], strict=True)
        )
        print(f"{name} / stock: throughput {rps:.3f}x, CPU per request {per_request:.3f}x")


if __name__ == "__main__":
    main()
