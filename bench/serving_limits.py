"""What the connection and request-head limits cost (issue: hold under abuse).

Rounds shuffled so drift hits all alike (wrk, one thread, keep-alive):

  stock:   a bare ASGI hello-world on uvicorn + httptools as it comes (no head limit, no head
           deadline, no connection cap): what every tokengate server ran before;
  limited: the same hello-world on tokengate's serving setup (`tokengate.serving`: the
           httptools protocol with `ServerLimits` enforced), what every tokengate server runs;
  h11:     the hello-world on uvicorn's pure-Python h11 parser with its head limit
           (`h11_max_incomplete_event_size`), the other way to bound heads;
  introspect-stock / introspect-limited: RFC 7662 introspection on `tokengate serve` with the
           stock protocol (`bench/serve_unlimited.py`) and as shipped, same database.

Two figures per case: requests/second, and the server's CPU time per request (from /proc; far
less sensitive to other load on the machine than throughput).

    .venv/bin/python bench/serving_limits.py [--rounds 5] [--seconds 5] [--connections 32]

Target: limited / stock within noise (throughput >= 0.95x, CPU per request <= 1.05x), for the
hello-world and for introspection.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from _harness import (
    PY,
    ROOT,
    Row,
    Server,
    alternate,
    authorization_server,
    basic,
    column,
    cpu_seconds,
    create_client,
    fetch_token,
    hello_server,
    limited_hello_server,
    parse_wrk,
    serve_command,
    server,
    wrk_arguments,
    wrk_command,
    wrk_post_script,
)

from tokengate.core.wire import INTROSPECT_PATH

CASES = ("stock", "limited", "h11", "introspect-stock", "introspect-limited")
PAIRS = (("limited", "stock"), ("h11", "stock"), ("introspect-limited", "introspect-stock"))
Target = tuple[Server, str, Path | None]  # the server, the path, the wrk script


def measure(
    target: Target, connections: int, seconds: float, cpu: dict[str, list[float]], name: str
) -> float:
    """One wrk run: its requests/second; the server's CPU µs per request goes into `cpu`."""
    running, path, script = target
    before = cpu_seconds(running.pid)
    command = wrk_command(
        running.url + path, connections=connections, seconds=seconds, script=script
    )
    result = parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    if result.errors:
        raise SystemExit(f"wrk saw errors against {name}: {result.errors}")
    cpu[name].append((cpu_seconds(running.pid) - before) / result.requests * 1e6)
    return result.rps


def print_round(cpu: dict[str, list[float]]) -> Callable[[int, Row], None]:
    def report(index: int, row: Row) -> None:
        parts = [f"{name} {row[name]:6.0f} rps {cpu[name][index]:5.1f} µs" for name in CASES]
        print(f"round {index + 1}: " + " | ".join(parts), flush=True)

    return report


def unlimited_serve(db: str) -> Callable[[int], list[str]]:
    """`tokengate serve` on uvicorn's stock protocol (`bench/serve_unlimited.py`)."""

    def command(port: int) -> list[str]:
        args = serve_command(port, db)
        return [PY, str(ROOT / "bench" / "serve_unlimited.py"), *args[args.index("serve") + 1 :]]

    return command


def targets(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Target]:
    """Start every server; what each case sends where."""
    db = f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db, "bench", scope="read")
    rs = create_client(db, "bench-rs", introspect=True)
    hello = {
        "stock": stack.enter_context(hello_server()),
        "limited": stack.enter_context(limited_hello_server()),
        "h11": stack.enter_context(hello_server(http="h11")),
    }
    unlimited = stack.enter_context(server(unlimited_serve(db), "/healthz"))
    limited = stack.enter_context(authorization_server(db))
    body = f"token={fetch_token(limited.url, client)}&token_type_hint=access_token"
    script = wrk_post_script(tmp, "introspect", body, basic(rs))
    return {
        **{name: (running, "/", None) for name, running in hello.items()},
        "introspect-stock": (unlimited, INTROSPECT_PATH, script),
        "introspect-limited": (limited, INTROSPECT_PATH, script),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    wrk_arguments(parser)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {name: [] for name in CASES}
    with contextlib.ExitStack() as stack:
        started = targets(stack, Path(tempfile.mkdtemp(prefix="tg-bench-")))
        scratch: dict[str, list[float]] = {name: [] for name in CASES}
        for name, target in started.items():  # warm-up
            measure(target, args.connections, 1, scratch, name)
        cases = {
            name: functools.partial(measure, target, args.connections, args.seconds, cpu, name)
            for name, target in started.items()
        }
        rows = alternate(cases, args.rounds, shuffle=True, report=print_round(cpu))
    print(f"\nconnections: {args.connections}, rounds: {args.rounds}")
    print(f"median stock hello-world: {statistics.median(column(rows, 'stock')):.0f} rps")
    for mine, base in PAIRS:
        rps = statistics.median(r[mine] / r[base] for r in rows)
        per_request = statistics.median(a / b for a, b in zip(cpu[mine], cpu[base], strict=True))
        print(f"{mine} / {base}: throughput {rps:.3f}x, CPU per request {per_request:.3f}x")


if __name__ == "__main__":
    main()
