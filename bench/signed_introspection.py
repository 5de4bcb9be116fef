"""Signed introspection (RFC 9701) against the JSON answer, on one server in one run.

wrk POSTs the same introspection request with `Accept: application/json` and with
`Accept: application/token-introspection+jwt`; rounds alternate json → signed so drift hits
both alike, and the report is the median per-round ratio. `--alg ES256` rotates the server to an
ES256 key first (RS256, RFC 9701 §6's default, is what a fresh server signs with).

    .venv/bin/python bench/signed_introspection.py [--alg RS256|ES256] [--rounds 5] [--seconds 5]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

from _harness import (
    Row,
    alternate,
    authorization_server,
    basic,
    cli,
    create_client,
    fetch_token,
    median_ratio,
    run_wrk,
    wrk_arguments,
    wrk_post_script,
)

from tokengate.core.introspection_jwt import MEDIA_TYPE
from tokengate.core.wire import INTROSPECT_PATH


def print_round(index: int, row: Row) -> None:
    plain, signed = row["json"], row["signed"]
    print(f"round {index + 1}: json {plain:8.0f} rps | signed {signed:8.0f} rps"
          f" ({signed / plain:.2f}x)", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alg", choices=("RS256", "ES256"), default="RS256")
    wrk_arguments(parser)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db, "bench", scope="read")
    rs = create_client(db, "bench", scope="read", introspect=True)
    if args.alg != "RS256":
        cli("keys", "rotate", "--delay", "0", "--alg", args.alg, "--database", db)
    with authorization_server(db) as auth:
        body = f"token={fetch_token(auth.url, client)}&token_type_hint=access_token"
        scripts = {
            name: wrk_post_script(tmp, name, body, {**basic(rs), "Accept": accept})
            for name, accept in (("json", "application/json"), ("signed", MEDIA_TYPE))
        }
        url = auth.url + INTROSPECT_PATH
        wrk = functools.partial(run_wrk, connections=args.connections, seconds=args.seconds)
        wrk(url, script=scripts["json"])  # warm-up
        cases = {name: functools.partial(wrk, url, script=path) for name, path in scripts.items()}
        rows = alternate(cases, args.rounds, report=print_round)
    print(f"\n{args.alg} signed / json: {median_ratio(rows, 'signed', 'json'):.2f}x"
          f" (connections: {args.connections}, rounds: {args.rounds})")  # fmt: skip


if __name__ == "__main__":
    main()
