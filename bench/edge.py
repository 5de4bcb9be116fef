"""Edge validation on a real proxy (issue: edge validation on real proxies).

One run, loopback only, the same upstream for all (the example resource server's public
`GET /public/ping`), rounds alternating so drift hits every case alike (wrk, one thread):

  (a) nginx `proxy_pass` alone;
  (b) nginx + `auth_request` → `tokengate authz` (the config `tokengate edge-config nginx` prints),
      a valid token, warm cache;
  (c) `tokengate gateway --mode introspect`, the same token.
  Targets: b >= 0.6 x a, b >= 2.5 x c.
  (d) the decision endpoint on its own (`/decide`, warm) vs a bare ASGI hello-world on the same
      uvicorn settings. Target >= 0.6.
  (e) 200 revocations under load through nginx: time from the revocation's 200 to the first 401
      at the proxy (p99 target < 100 ms), and introspection calls per token at `tokengate authz`.

nginx runs one worker (the Python servers run one process each), access log off.

    .venv/bin/python bench/edge.py [--rounds 5] [--seconds 5] [--connections 32] [--revocations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    TOKEN_HEADER,
    Row,
    Server,
    alternate,
    authorization_server,
    create_client,
    example_resource_server,
    fetch_tokens,
    free_port,
    hello_server,
    local_url,
    median_ratio,
    port_open,
    process,
    run_wrk,
    server,
    tokengate,
    wrk_arguments,
    wrk_script,
)
from revocation_latency import POLL_TIMEOUT, first_401, percentile, row, start_load, stop_load

from tokengate.core.wire import REVOKE_PATH
from tokengate.edge.configs.standalone import nginx_main
from tokengate.resource.protocol.rfc7662 import ClientCredentials

PING = "/public/ping"
TOKEN_LIFETIME = 3600


def plain_proxy(listen: str, upstream: str) -> str:
    """(a): `proxy_pass` as a production config has it: a keep-alive pool, and the forwarding
    headers the generated block sets too (so the two differ by the auth check alone)."""
    name = "plain_" + listen.replace(".", "_").replace(":", "_")
    return f"""upstream {name} {{ server {upstream.removeprefix("http://")}; keepalive 32; }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://{name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}"""


@contextlib.contextmanager
def nginx(tmp: Path, blocks: list[str], ports: list[int]) -> Iterator[None]:
    binary = shutil.which("nginx")
    if binary is None:
        raise SystemExit("nginx is needed: apt-get install nginx")
    (tmp / "blocks.conf").write_text("\n".join(blocks))
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_main(tmp, tmp / "blocks.conf", access_log=False))
    with process([binary, "-p", str(tmp), "-c", str(conf)], port_open(ports[0])):
        for port in ports[1:]:
            deadline = time.monotonic() + 10
            while not port_open(port)():
                if time.monotonic() > deadline:
                    raise SystemExit(f"nginx did not listen on {port}")
                time.sleep(0.05)
        yield


def authz_server(
    issuer: str, client: ClientCredentials
) -> contextlib.AbstractContextManager[Server]:
    def command(port: int) -> list[str]:
        return tokengate("authz", "--port", str(port), "--issuer", issuer,
                         "--protect", "/**", "--cache-max-ttl", str(TOKEN_LIFETIME),
                         "--log-level", "warning")  # fmt: skip

    env = {"TOKENGATE_AUTHZ_CLIENT_ID": client.client_id,
           "TOKENGATE_AUTHZ_CLIENT_SECRET": client.client_secret}  # fmt: skip
    return server(command, "/healthz", env)


def gateway_server(
    upstream: str, issuer: str, client: ClientCredentials
) -> contextlib.AbstractContextManager[Server]:
    def command(port: int) -> list[str]:
        return tokengate("gateway", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
                         "--mode", "introspect", "--issuer", issuer, "--protect", "/**",
                         "--cache-max-ttl", str(TOKEN_LIFETIME), "--log-level", "warning")  # fmt: skip

    env = {"TOKENGATE_GW_CLIENT_ID": client.client_id,
           "TOKENGATE_GW_CLIENT_SECRET": client.client_secret}  # fmt: skip
    return server(command, "/_tokengate/healthz", env)


def edge_block(listen: str, upstream: str, authz: str) -> str:
    """(b): exactly what `tokengate edge-config nginx` prints."""
    return subprocess.run(
        tokengate(
            "edge-config", "nginx", "--listen", listen, "--upstream", upstream, "--authz", authz
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def throughput(args: argparse.Namespace, tmp: Path, urls: dict[str, str], token: str) -> list[Row]:
    script = wrk_script(tmp, "token", {TOKEN_HEADER: token})

    def case(url: str) -> Any:  # the same request everywhere, token included
        return lambda: run_wrk(url, connections=args.connections, seconds=args.seconds,
                               script=script)  # fmt: skip

    cases = {name: case(urls[name] + PING) for name in ("a", "b", "c")}
    for url in (urls["a"], urls["b"], urls["c"]):
        run_wrk(url + PING, connections=args.connections, seconds=1, script=script)  # warm-up

    def report(index: int, r: Row) -> None:
        print(f"round {index + 1}: (a) nginx {r['a']:8.0f} rps | (b) nginx+authz {r['b']:8.0f}"
              f" | (c) gateway introspect {r['c']:8.0f}", flush=True)  # fmt: skip

    return alternate(cases, args.rounds, report=report)


def decision_alone(args: argparse.Namespace, tmp: Path, authz: str, token: str) -> list[Row]:
    headers = {"X-Original-Method": "GET", "X-Original-URI": PING, TOKEN_HEADER: token}
    script = wrk_script(tmp, "decide", headers)
    with hello_server() as hello:
        cases = {
            "hello": lambda: run_wrk(
                hello.url + "/", connections=args.connections, seconds=args.seconds
            ),
            "decide": lambda: run_wrk(
                authz + "/decide", connections=args.connections, seconds=args.seconds, script=script
            ),
        }

        def report(index: int, r: Row) -> None:
            print(f"round {index + 1}: hello-world {r['hello']:8.0f} rps | /decide"
                  f" {r['decide']:8.0f} rps ({r['decide'] / r['hello']:.2f}x)", flush=True)  # fmt: skip

        return alternate(cases, args.rounds, report=report)


async def revocations(
    args: argparse.Namespace, tmp: Path, as_url: str, proxy: str, authz: str, app: ClientCredentials
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        tokens = await fetch_tokens(as_url, app, 1000 + args.revocations, scope="read")
        steady, doomed = tokens[:1000], tokens[1000:]
        for token in tokens:  # warm: each token decided once through the proxy
            answer = await http.get(proxy + PING, headers={TOKEN_HEADER: token})
            answer.raise_for_status()
        before = await introspections(http, authz)
        loader = start_load(tmp, [proxy], steady, 250, path=PING)
        await asyncio.sleep(2)
        latencies: list[float] = []
        for token in doomed:
            answer = await http.post(as_url + REVOKE_PATH, data={"token": token},
                                     auth=(app.client_id, app.client_secret))  # fmt: skip
            since = time.perf_counter()
            answer.raise_for_status()
            latencies.append(await first_401(http, proxy, token, since, path=PING))
            await asyncio.sleep(0.1)
        load = stop_load(loader)[proxy]
        after = await introspections(http, authz)
    print(f"\n{args.revocations} revocations under load through nginx + authz")
    print(f"{'':<10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}{'n':>8}   (ms)")
    print(row("nginx", latencies))
    missed = sum(1 for v in latencies if v == float("inf"))
    total = sum(load["statuses"].values())
    print(f"no 401 within {POLL_TIMEOUT:.0f}s: {missed}; steady load {total / load['seconds']:.0f}"
          f" req/s, statuses {load['statuses']}")  # fmt: skip
    distinct = 1000 + args.revocations
    print(f"introspections at authz: {before:.0f} for {distinct} distinct tokens"
          f" ({before / distinct:.2f} per token); +{after - before:.0f} under load for"
          f" {args.revocations} revoked tokens")  # fmt: skip
    p99 = percentile(latencies, 0.99)
    print(f"revocation -> 401 at the proxy p99 {p99 * 1000:.1f} ms (target < 100 ms)"
          f" {'PASS' if p99 < 0.1 else 'MISS'}")  # fmt: skip


async def introspections(http: httpx.AsyncClient, authz: str) -> float:
    text = (await http.get(authz + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("tokengate_rs_introspection_calls_total "):
            return float(line.split()[1])
    return 0.0


def verdict(name: str, value: float, target: float) -> str:
    return f"{name}: {value:.2f}x  (target >= {target}x) {'PASS' if value >= target else 'MISS'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    wrk_arguments(parser)
    parser.add_argument("--revocations", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-edge-bench-"))
    db = f"sqlite:///{tmp / 'edge.db'}"
    app = create_client(db, "edge-app", scope="read", token_ttl=TOKEN_LIFETIME)
    rs = create_client(db, "edge-rs", scope="", introspect=True)
    decider = create_client(db, "edge-authz", scope="", introspect=True)
    with contextlib.ExitStack() as stack:
        issuer = stack.enter_context(authorization_server(db)).url
        upstream = stack.enter_context(example_resource_server(issuer, rs)).url
        authz = stack.enter_context(authz_server(issuer, decider)).url
        gateway = stack.enter_context(gateway_server(upstream, issuer, decider)).url
        plain, edge = free_port(), free_port()
        blocks = [plain_proxy(f"127.0.0.1:{plain}", upstream),
                  edge_block(f"127.0.0.1:{edge}", upstream, authz)]  # fmt: skip
        stack.enter_context(nginx(tmp, blocks, [plain, edge]))
        urls = {"a": local_url(plain), "b": local_url(edge), "c": gateway}
        token = asyncio.run(fetch_tokens(issuer, app, 1, scope="read"))[0]
        rows = throughput(args, tmp, urls, token)
        print(verdict("(b) nginx + authz / (a) nginx alone", median_ratio(rows, "b", "a"), 0.6))
        print(verdict("(b) nginx + authz / (c) gateway introspect", median_ratio(rows, "b", "c"),
                      2.5))  # fmt: skip
        alone = decision_alone(args, tmp, authz, token)
        print(verdict("/decide / bare ASGI hello-world", median_ratio(alone, "decide", "hello"),
                      0.6))  # fmt: skip
        asyncio.run(revocations(args, tmp, issuer, urls["b"], authz, app))


if __name__ == "__main__":
    main()
