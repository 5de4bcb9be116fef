"""Resource-server overhead (issue: resource-server library).

One run, loopback only, one authorization server (SQLite) and one example resource server:

1. Warm cache: wrk against the RS's unprotected `GET /public/ping` and its protected
   `GET /auth-api/hello` carrying a valid token in `X-Access-Token` (same server, same load
   generator, the token cached after the first call), alternating rounds. Ratio
   protected/unprotected, target >= 0.85.
2. Cache miss: sequential requests, alternating, of (a) `GET /auth-api/hello` with a token the
   RS has never seen (one introspection each) and (b) a direct introspection call to the AS
   with the RS's credentials. Median latency of each and what the miss path adds.

    .venv/bin/python bench/rs_overhead.py [--rounds 5] [--seconds 5] [--connections 32] [--misses 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _harness import PY, free_port, median_ratio, process, run_wrk


def cli(*args: str) -> str:
    return subprocess.run(
        [PY, "-m", "tokengate", *args], capture_output=True, text=True, check=True
    ).stdout


def create_client(db: str, name: str, *extra: str) -> tuple[str, str]:
    out = json.loads(cli("clients", "create", name, "--database", db, "--json", *extra))
    return out["client_id"], out["client_secret"]


def token(as_url: str, client: tuple[str, str], http: httpx.Client) -> str:
    response = http.post(
        as_url + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=client
    )
    return str(response.json()["access_token"])


def header_script(directory: Path, value: str) -> Path:
    path = directory / "hello.lua"
    path.write_text(f'wrk.headers["X-Access-Token"] = "{value}"\n')
    return path


def warm_cache_ratio(rs_url: str, script: Path, args: argparse.Namespace) -> None:
    run_wrk(rs_url + "/public/ping", connections=args.connections, seconds=1)  # warm-up
    rows = []
    for i in range(args.rounds):
        public = run_wrk(
            rs_url + "/public/ping", connections=args.connections, seconds=args.seconds
        )
        protected = run_wrk(
            rs_url + "/auth-api/hello", connections=args.connections, seconds=args.seconds,
            script=script,
        )  # fmt: skip
        rows.append((protected, public))
        print(f"round {i + 1}: unprotected {public:8.0f} rps | protected (warm cache) "
              f"{protected:8.0f} rps ({protected / public:.2f}x)", flush=True)  # fmt: skip
    ratio = median_ratio(rows)
    verdict = "PASS" if ratio >= 0.85 else "MISS"
    print(f"protected (warm cache) / unprotected: {ratio:.2f}x  (target >= 0.85x) {verdict}\n")


def miss_latency(
    as_url: str, rs_url: str, client: tuple[str, str], rs: tuple[str, str], misses: int
) -> None:
    with httpx.Client(timeout=10) as http:
        fresh = [token(as_url, client, http) for _ in range(misses)]
        direct_token = fresh[0]
        via_rs, direct = [], []
        for value in fresh:
            started = time.perf_counter()
            response = http.get(rs_url + "/auth-api/hello", headers={"X-Access-Token": value})
            via_rs.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            started = time.perf_counter()
            response = http.post(as_url + "/oauth2/introspect", data={"token": direct_token},
                                 auth=rs)  # fmt: skip
            direct.append(time.perf_counter() - started)
            assert response.json()["active"] is True
    miss, base = statistics.median(via_rs) * 1000, statistics.median(direct) * 1000
    print(f"cache miss through the RS: median {miss:.2f} ms | direct introspection call: "
          f"median {base:.2f} ms")  # fmt: skip
    print(f"the miss path adds {miss - base:.2f} ms over a direct introspection call "
          f"({miss / base:.2f}x of it), n={misses}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--misses", type=int, default=300)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-rs-bench-"))
    db = f"sqlite:///{tmp / 'rs.db'}"
    client = create_client(db, "svc", "--scope", "read write")
    rs = create_client(db, "rs", "--introspect")
    as_port, rs_port = free_port(), free_port()
    as_url, rs_url = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}"
    server = [PY, "-m", "tokengate", "serve", "--port", str(as_port), "--database", db,
              "--log-level", "warning"]  # fmt: skip
    resource = [PY, "-m", "tokengate", "example-resource-server", "--port", str(rs_port),
                "--issuer", as_url, "--cache-max-ttl", "3600"]  # fmt: skip
    env = {"TOKENGATE_RS_CLIENT_ID": rs[0], "TOKENGATE_RS_CLIENT_SECRET": rs[1]}
    with process(server, as_url + "/healthz"), process(resource, rs_url + "/public/ping", env):
        with httpx.Client(timeout=10) as http:
            value = token(as_url, client, http)
            warm = http.get(rs_url + "/auth-api/hello", headers={"X-Access-Token": value})
            assert warm.status_code == 200, warm.text
        warm_cache_ratio(rs_url, header_script(tmp, value), args)
        miss_latency(as_url, rs_url, client, rs, args.misses)


if __name__ == "__main__":
    main()
