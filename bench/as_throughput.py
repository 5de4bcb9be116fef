"""Authorization server throughput vs a bare ASGI hello-world (issue 14, "Speed").

One run, one machine, same uvicorn settings (1 worker, uvloop, httptools, no access log), wrk with
one thread and N connections. Rounds alternate hello → introspect → token (→ served hello) so
drift hits all alike; the report is the median per-round ratio.

The targets are against the hello-world on stock uvicorn. tokengate's servers run uvicorn with
their own httptools protocol (`tokengate.serving`: bounded heads, one write per response), so
`--served-hello` also runs the same hello-world under that protocol and prints the ratios
against it: what the authorization server's own work costs, with the serving layer equal.

    .venv/bin/python bench/as_throughput.py [--database URL] [--rounds 5] [--seconds 5]
        [--connections 32] [--served-hello]

Targets: introspection ≥ 0.8× hello-world, token issuance (SQLite: durable, the 200 follows the
commit) ≥ 0.35×.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
from pathlib import Path

from _harness import (
    Row,
    alternate,
    authorization_server,
    basic,
    column,
    create_client,
    fetch_token,
    hello_server,
    introspect,
    limited_hello_server,
    median_ratio,
    run_wrk,
    wrk_arguments,
    wrk_post_script,
)

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH

INTROSPECTION_TARGET = 0.8
ISSUANCE_TARGET = 0.35


def print_round(index: int, row: Row) -> None:
    h, intro, tok = row["hello"], row["introspect"], row["token"]
    served = f" | served hello {row['served']:8.0f} rps" if "served" in row else ""
    print(
        f"round {index + 1}: hello {h:8.0f} rps | introspect {intro:8.0f} rps ({intro / h:.2f}x)"
        f" | token {tok:8.0f} rps ({tok / h:.2f}x){served}",
        flush=True,
    )


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.3f}x  (target >= {target:.2f}x) {'PASS' if ratio >= target else 'MISS'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--served-hello",
        action="store_true",
        help="also run the hello-world under tokengate's serving protocol (a fourth case)",
    )
    wrk_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db, "bench", scope="read write")
    rs = create_client(db, "bench", scope="read write", introspect=True)
    with contextlib.ExitStack() as servers:
        hello = servers.enter_context(hello_server())
        auth = servers.enter_context(authorization_server(db))
        token = fetch_token(auth.url, client)
        introspect_lua = wrk_post_script(
            tmp, "introspect", f"token={token}&token_type_hint=access_token", basic(rs)
        )
        token_lua = wrk_post_script(tmp, "token", "grant_type=client_credentials", basic(client))
        assert introspect(auth.url, rs, token)["active"] is True
        wrk = functools.partial(run_wrk, connections=args.connections, seconds=args.seconds)
        run_wrk(hello.url + "/", connections=args.connections, seconds=1)  # warm-up
        cases = {
            "hello": functools.partial(wrk, hello.url + "/"),
            "introspect": functools.partial(wrk, auth.url + INTROSPECT_PATH, script=introspect_lua),
            "token": functools.partial(wrk, auth.url + TOKEN_PATH, script=token_lua),
        }
        if args.served_hello:
            served = servers.enter_context(limited_hello_server())
            cases["served"] = functools.partial(wrk, served.url + "/")
        rows = alternate(cases, args.rounds, report=print_round)
    r_intro = median_ratio(rows, "introspect", "hello")
    r_token = median_ratio(rows, "token", "hello")
    print(f"\ndatabase: {db.split(':')[0]}, connections: {args.connections}, rounds: {args.rounds}")
    print(f"median hello-world: {statistics.median(column(rows, 'hello')):.0f} rps")
    print(f"introspection / hello-world: {verdict(r_intro, INTROSPECTION_TARGET)}")
    print(f"token issuance / hello-world: {verdict(r_token, ISSUANCE_TARGET)}")
    if args.served_hello:
        s_intro = median_ratio(rows, "introspect", "served")
        s_token = median_ratio(rows, "token", "served")
        print(
            f"against the hello-world under tokengate's serving: introspection {s_intro:.2f}x,"
            f" token issuance {s_token:.2f}x"
        )


if __name__ == "__main__":
    main()
