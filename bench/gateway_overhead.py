"""Gateway overhead (issue: gateway, demo and observability).

Two comparisons, one run, one machine, rounds alternating A → B so drift hits both alike; the
report is the median per-round ratio B / A (requests per second, wrk, one thread, N connections):

1. bypass:     the example resource server's GET /public/ping, direct (A) vs through
               `tokengate gateway --mode bypass` (B).
2. introspect: GET /auth-api/hello with a valid token, validated by the example resource server
               itself (A) vs validated by `tokengate gateway --mode introspect` in front of a bare
               ASGI upstream that validates nothing (B). Both caches are warm, so this compares
               where validation runs (in-process middleware vs an extra proxy hop), not the
               authorization server.

Every server runs with uvloop, httptools and no access log (the example resource server through
a launcher below, since its CLI always logs requests).

    .venv/bin/python bench/gateway_overhead.py [--rounds 5] [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx
from _harness import PY, ROOT, free_port, median_ratio, process, run_wrk

# The example resource server as its CLI builds it, minus the per-request access log.
RS_LAUNCHER = """
import os, sys, uvicorn
from tokengate.resource.example import create_example_app
from tokengate.resource.runtime.settings import ValidatorSettings, create_validator
port, issuer, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = ValidatorSettings(client_id=client_id, client_secret=os.environ["RS_SECRET"], issuer=issuer)
app = create_example_app(create_validator(settings))
uvicorn.run(app, port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning")
"""


def create_client(db: str, name: str, *extra: str) -> tuple[str, str]:
    args = [PY, "-m", "tokengate", "clients", "create", name, "--database", db, "--json", *extra]
    data = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    return data["client_id"], data["client_secret"]


def header_script(directory: Path, token: str) -> Path:
    path = directory / "token.lua"
    path.write_text(f'wrk.headers["X-Access-Token"] = "{token}"\n')
    return path


def gateway(port: int, upstream: str, *extra: str) -> list[str]:
    listen = f"127.0.0.1:{port}"
    return [
        PY,
        "-m",
        "tokengate",
        "gateway",
        "--upstream",
        upstream,
        "--listen",
        listen,
        "--log-level",
        "warning",
        *extra,
    ]


def alternate(
    label: str,
    a: str,
    b: str,
    rounds: int,
    seconds: float,
    connections: int,
    script: Path | None = None,
) -> list[tuple[float, float]]:
    rows = []
    for i in range(rounds):
        ra = run_wrk(a, connections=connections, seconds=seconds, script=script)
        rb = run_wrk(b, connections=connections, seconds=seconds, script=script)
        rows.append((rb, ra))
        print(
            f"{label} round {i + 1}: A {ra:8.0f} rps | B {rb:8.0f} rps ({rb / ra:.2f}x)", flush=True
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-gw-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    app, rs = (
        create_client(db, "bench-app", "--scope", "read"),
        create_client(db, "bench-rs", "--introspect"),
    )
    as_port, rs_port, hello_port, bypass_port, edge_port = (free_port() for _ in range(5))
    auth, rs_url, hello_url = (f"http://127.0.0.1:{p}" for p in (as_port, rs_port, hello_port))
    bypass_url, edge_url = f"http://127.0.0.1:{bypass_port}", f"http://127.0.0.1:{edge_port}"
    serve = [
        PY,
        "-m",
        "tokengate",
        "serve",
        "--port",
        str(as_port),
        "--database",
        db,
        "--log-level",
        "warning",
    ]
    rs_cmd = [PY, "-c", RS_LAUNCHER, str(rs_port), auth, rs[0]]
    hello = [
        PY,
        "-m",
        "uvicorn",
        "hello_asgi:app",
        "--app-dir",
        str(ROOT / "bench"),
        "--port",
        str(hello_port),
    ]
    hello += [
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    edge = gateway(
        edge_port, hello_url, "--mode", "introspect", "--issuer", auth, "--client-id", rs[0]
    )
    edge += ["--protect", "/auth-api/**", "--require-scope", "GET /auth-api/hello=read"]
    with (
        process(serve, auth + "/healthz"),
        process(rs_cmd, rs_url + "/public/ping", env={"RS_SECRET": rs[1]}),
        process(hello, hello_url + "/"),
        process(
            gateway(bypass_port, rs_url, "--mode", "bypass"), bypass_url + "/_tokengate/healthz"
        ),
        process(edge, edge_url + "/_tokengate/healthz", env={"TOKENGATE_GW_CLIENT_SECRET": rs[1]}),
    ):
        token = httpx.post(
            auth + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=app
        ).json()["access_token"]
        script = header_script(tmp, token)
        for url in (rs_url, edge_url):  # warm both caches; both must accept the token
            assert (
                httpx.get(url + "/auth-api/hello", headers={"X-Access-Token": token}).status_code
                == 200
            )
        assert httpx.get(edge_url + "/auth-api/hello").status_code == 401
        run_wrk(rs_url + "/public/ping", connections=args.connections, seconds=1)  # warm-up
        run_wrk(bypass_url + "/public/ping", connections=args.connections, seconds=1)
        common = (args.rounds, args.seconds, args.connections)
        bypass = alternate("bypass", rs_url + "/public/ping", bypass_url + "/public/ping", *common)
        intro = alternate(
            "introspect",
            rs_url + "/auth-api/hello",
            edge_url + "/auth-api/hello",
            *common,
            script=script,
        )
    print(f"\nconnections: {args.connections}, rounds: {args.rounds} x {args.seconds:g} s, wrk -t1")
    print(
        f"1. /public/ping direct to the RS (A): median {statistics.median(a for _, a in bypass):.0f} rps"
    )
    print(
        f"   through the bypass gateway (B):     median {statistics.median(b for b, _ in bypass):.0f} rps"
    )
    print(f"   bypass gateway / direct:            {median_ratio(bypass):.2f}x")
    print(
        f"2. /auth-api/hello validated by the RS (A):          median {statistics.median(a for _, a in intro):.0f} rps"
    )
    print(
        f"   validated by the introspect gateway (B) + bare upstream: median {statistics.median(b for b, _ in intro):.0f} rps"
    )
    print(f"   introspect gateway / RS-side validation:  {median_ratio(intro):.2f}x")


if __name__ == "__main__":
    main()
