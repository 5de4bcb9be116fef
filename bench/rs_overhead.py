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

    .venv/bin/python bench/rs_overhead.py [--rounds 5] [--seconds 5] [--connections 32] [--misses 300]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _harness import (
    PROTECTED_PATH,
    TOKEN_HEADER,
    Row,
    alternate,
    authorization_server,
    create_client,
    example_resource_server,
    fetch_token,
    introspect,
    median_ratio,
    run_wrk,
    wrk_arguments,
    wrk_script,
)

from tokengate.resource.protocol.rfc7662 import ClientCredentials


def print_round(index: int, row: Row) -> None:
    public, protected = row["unprotected"], row["protected"]
    print(f"round {index + 1}: unprotected {public:8.0f} rps | protected (warm cache) "
          f"{protected:8.0f} rps ({protected / public:.2f}x)", flush=True)  # fmt: skip


def warm_cache_ratio(rs_url: str, script: Path, args: argparse.Namespace) -> None:
    run_wrk(rs_url + "/public/ping", connections=args.connections, seconds=1)  # warm-up
    wrk = functools.partial(run_wrk, connections=args.connections, seconds=args.seconds)
    cases = {
        "unprotected": functools.partial(wrk, rs_url + "/public/ping"),
        "protected": functools.partial(wrk, rs_url + PROTECTED_PATH, script=script),
    }
    ratio = median_ratio(
        alternate(cases, args.rounds, report=print_round), "protected", "unprotected"
    )
    verdict = "PASS" if ratio >= 0.85 else "MISS"
    print(f"protected (warm cache) / unprotected: {ratio:.2f}x  (target >= 0.85x) {verdict}\n")


def miss_latency(
    as_url: str, rs_url: str, client: ClientCredentials, rs: ClientCredentials, misses: int
) -> None:
    with httpx.Client(timeout=10) as http:
        # Each token is presented once, through the RS or directly, so both sides of a pair
        # make the authorization server read a token record it has not cached yet.
        fresh = [fetch_token(as_url, client, http) for _ in range(2 * misses)]
        cached = fetch_token(as_url, client, http)
        assert http.get(rs_url + PROTECTED_PATH, headers={TOKEN_HEADER: cached}).is_success
        via_rs, direct, warm = [], [], []
        for through_rs, directly in zip(fresh[::2], fresh[1::2], strict=True):
            via_rs.append(_timed_get(http, rs_url, through_rs))
            started = time.perf_counter()
            active = introspect(as_url, rs, directly, http)["active"]
            direct.append(time.perf_counter() - started)
            assert active is True
            warm.append(_timed_get(http, rs_url, cached))
    miss, base = statistics.median(via_rs) * 1000, statistics.median(direct) * 1000
    hit = statistics.median(warm) * 1000
    print(f"through the RS: cache miss median {miss:.2f} ms, warm hit {hit:.2f} ms | direct "
          f"introspection call: median {base:.2f} ms (n={misses} each, interleaved)")  # fmt: skip
    print(f"cache miss / direct introspection: {miss / base:.2f}x  (target <= 1.3x) "
          f"{'PASS' if miss / base <= 1.3 else 'MISS'}")  # fmt: skip
    print(f"what the miss adds to a request (miss - warm hit) / direct introspection: "
          f"{(miss - hit) / base:.2f}x")  # fmt: skip


def _timed_get(http: httpx.Client, rs_url: str, token: str) -> float:
    """Seconds for one protected request through the RS (asserting it was let through)."""
    started = time.perf_counter()
    response = http.get(rs_url + PROTECTED_PATH, headers={TOKEN_HEADER: token})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


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
        warm_cache_ratio(resource.url, wrk_script(tmp, "hello", {TOKEN_HEADER: value}), args)
        miss_latency(auth.url, resource.url, client, rs, args.misses)


if __name__ == "__main__":
    main()
