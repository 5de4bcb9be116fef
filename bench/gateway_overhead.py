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
import contextlib
import functools
import statistics
import tempfile
from pathlib import Path

import httpx
from _harness import (
    PROTECTED_PATH,
    PY,
    TOKEN_HEADER,
    Row,
    Server,
    alternate,
    authorization_server,
    column,
    create_client,
    fetch_token,
    hello_server,
    median_ratio,
    run_wrk,
    server,
    tokengate,
    wrk_arguments,
    wrk_script,
)

from tokengate.resource.protocol.rfc7662 import ClientCredentials

# The example resource server as its CLI builds it, minus the per-request access log.
RS_LAUNCHER = """
import os, sys, uvicorn
from tokengate.resource.example import create_example_app
from tokengate.resource import ValidatorSettings, create_validator
port, issuer, client_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = ValidatorSettings(client_id=client_id, client_secret=os.environ["RS_SECRET"], issuer=issuer)
app = create_example_app(create_validator(settings))
uvicorn.run(app, port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning")
"""


def quiet_resource_server(
    issuer: str, rs: ClientCredentials
) -> contextlib.AbstractContextManager[Server]:
    """The example resource server through `RS_LAUNCHER`."""

    def command(port: int) -> list[str]:
        return [PY, "-c", RS_LAUNCHER, str(port), issuer, rs.client_id]

    return server(command, "/public/ping", {"RS_SECRET": rs.client_secret})


def gateway(
    upstream: str, *extra: str, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[Server]:
    """`tokengate gateway` in front of `upstream`."""

    def command(port: int) -> list[str]:
        listen = ["--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
        return tokengate("gateway", "--upstream", upstream, *listen, *extra)

    return server(command, "/_tokengate/healthz", env)


def compare(
    label: str, a: str, b: str, args: argparse.Namespace, script: Path | None = None
) -> list[Row]:
    """Alternating wrk rounds against `a` and `b`, each round printed."""

    def report(index: int, row: Row) -> None:
        ra, rb = row["A"], row["B"]
        print(
            f"{label} round {index + 1}: A {ra:8.0f} rps | B {rb:8.0f} rps ({rb / ra:.2f}x)",
            flush=True,
        )

    wrk = functools.partial(
        run_wrk, connections=args.connections, seconds=args.seconds, script=script
    )
    cases = {"A": functools.partial(wrk, a), "B": functools.partial(wrk, b)}
    return alternate(cases, args.rounds, report=report)


def median_rps(rows: list[Row], name: str) -> float:
    return statistics.median(column(rows, name))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    wrk_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-gw-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    app = create_client(db, "bench-app", scope="read")
    rs = create_client(db, "bench-rs", introspect=True)
    with (
        authorization_server(db) as auth,
        quiet_resource_server(auth.url, rs) as resource,
        hello_server(proxy_headers=True) as hello,
        gateway(resource.url, "--mode", "bypass") as bypass_gw,
        gateway(
            hello.url,
            *("--mode", "introspect", "--issuer", auth.url, "--client-id", rs.client_id),
            *("--protect", "/auth-api/**", "--require-scope", "GET /auth-api/hello=read"),
            env={"TOKENGATE_GW_CLIENT_SECRET": rs.client_secret},
        ) as edge,
    ):
        token = fetch_token(auth.url, app)
        script = wrk_script(tmp, "token", {TOKEN_HEADER: token})
        for url in (resource.url, edge.url):  # warm both caches; both must accept the token
            assert httpx.get(url + PROTECTED_PATH, headers={TOKEN_HEADER: token}).status_code == 200
        assert httpx.get(edge.url + PROTECTED_PATH).status_code == 401
        run_wrk(resource.url + "/public/ping", connections=args.connections, seconds=1)  # warm-up
        run_wrk(bypass_gw.url + "/public/ping", connections=args.connections, seconds=1)
        bypass = compare(
            "bypass", resource.url + "/public/ping", bypass_gw.url + "/public/ping", args
        )
        intro = compare(
            "introspect", resource.url + PROTECTED_PATH, edge.url + PROTECTED_PATH, args, script
        )
    print(f"\nconnections: {args.connections}, rounds: {args.rounds} x {args.seconds:g} s, wrk -t1")
    print(f"1. /public/ping direct to the RS (A): median {median_rps(bypass, 'A'):.0f} rps")
    print(f"   through the bypass gateway (B):     median {median_rps(bypass, 'B'):.0f} rps")
    print(f"   bypass gateway / direct:            {median_ratio(bypass, 'B', 'A'):.2f}x")
    print(
        f"2. /auth-api/hello validated by the RS (A):          median {median_rps(intro, 'A'):.0f} rps"
    )
    print(
        f"   validated by the introspect gateway (B) + bare upstream: median {median_rps(intro, 'B'):.0f} rps"
    )
    print(f"   introspect gateway / RS-side validation:  {median_ratio(intro, 'B', 'A'):.2f}x")


if __name__ == "__main__":
    main()
