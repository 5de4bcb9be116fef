"""Authorization server throughput vs a bare ASGI hello-world (issue: authorization server).

One run, one machine, same uvicorn settings (1 worker, uvloop, httptools, no access log), wrk with
one thread and N connections. Rounds alternate hello → introspect → token so drift hits all
three alike; the report is the median per-round ratio.

    .venv/bin/python bench/as_throughput.py [--database URL] [--rounds 5] [--seconds 5] [--connections 32]

Targets: introspection ≥ 0.5× hello-world, token issuance (durable writes) ≥ 0.25×.
"""

from __future__ import annotations

import argparse
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
    median_ratio,
    run_wrk,
    wrk_arguments,
    wrk_post_script,
)

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH


def print_round(index: int, row: Row) -> None:
    h, intro, tok = row["hello"], row["introspect"], row["token"]
    print(
        f"round {index + 1}: hello {h:8.0f} rps | introspect {intro:8.0f} rps ({intro / h:.2f}x)"
        f" | token {tok:8.0f} rps ({tok / h:.2f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    wrk_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db, "bench", scope="read write")
    rs = create_client(db, "bench", scope="read write", introspect=True)
    with hello_server() as hello, authorization_server(db) as auth:
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
        rows = alternate(cases, args.rounds, report=print_round)
    r_intro = median_ratio(rows, "introspect", "hello")
    r_token = median_ratio(rows, "token", "hello")
    print(f"\ndatabase: {db.split(':')[0]}, connections: {args.connections}, rounds: {args.rounds}")
    print(f"median hello-world: {statistics.median(column(rows, 'hello')):.0f} rps")
    print(
        f"introspection / hello-world: {r_intro:.2f}x  (target >= 0.50x) {'PASS' if r_intro >= 0.5 else 'MISS'}"
    )
    print(
        f"token issuance / hello-world: {r_token:.2f}x  (target >= 0.25x) {'PASS' if r_token >= 0.25 else 'MISS'}"
    )


if __name__ == "__main__":
    main()
