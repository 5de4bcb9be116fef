"""Authorization server throughput vs a bare ASGI hello-world (issue: authorization server).

One run, one machine, same uvicorn settings (1 worker, uvloop, httptools, no access log), wrk with
one thread and N connections. Rounds alternate hello → introspect → token so drift hits all
three alike; the report is the median per-round ratio.

    .venv/bin/python bench/as_throughput.py [--database URL] [--rounds 5] [--seconds 5] [--connections 32]

Targets: introspection ≥ 0.5× hello-world, token issuance (durable writes) ≥ 0.25×.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
from _harness import PY, ROOT, free_port, median_ratio, process, run_wrk, wrk_post_script


def create_client(db: str, *extra: str) -> tuple[str, str]:
    out = subprocess.run(
        [
            PY,
            "-m",
            "tokengate",
            "clients",
            "create",
            "bench",
            "--scope",
            "read write",
            "--database",
            db,
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    return data["client_id"], data["client_secret"]


def basic(cid: str, secret: str) -> str:
    raw = f"{quote(cid, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    client = create_client(db)
    rs = create_client(db, "--introspect")
    hello_port, tg_port = free_port(), free_port()
    hello = [
        PY,
        "-m",
        "uvicorn",
        "hello_asgi:app",
        "--app-dir",
        str(ROOT / "bench"),
        "--port",
        str(hello_port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-proxy-headers",  # as `tokengate serve` (proxy_headers=False)
        "--log-level",
        "warning",
    ]
    tg = [
        PY,
        "-m",
        "tokengate",
        "serve",
        "--port",
        str(tg_port),
        "--database",
        db,
        "--log-level",
        "warning",
    ]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with (
        process(hello, f"http://127.0.0.1:{hello_port}/"),
        process(tg, f"http://127.0.0.1:{tg_port}/healthz"),
    ):
        base = f"http://127.0.0.1:{tg_port}"
        token = httpx.post(
            base + "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(*client)},
        ).json()["access_token"]
        introspect_lua = wrk_post_script(
            tmp,
            "introspect",
            f"token={token}&token_type_hint=access_token",
            {**form, "Authorization": basic(*rs)},
        )
        token_lua = wrk_post_script(
            tmp, "token", "grant_type=client_credentials", {**form, "Authorization": basic(*client)}
        )
        assert (
            httpx.post(
                base + "/oauth2/introspect",
                data={"token": token},
                headers={"Authorization": basic(*rs)},
            ).json()["active"]
            is True
        )
        run_wrk(
            f"http://127.0.0.1:{hello_port}/", connections=args.connections, seconds=1
        )  # warm-up
        rows: list[tuple[float, float, float]] = []
        for i in range(args.rounds):
            h = run_wrk(
                f"http://127.0.0.1:{hello_port}/",
                connections=args.connections,
                seconds=args.seconds,
            )
            intro = run_wrk(
                base + "/oauth2/introspect",
                connections=args.connections,
                seconds=args.seconds,
                script=introspect_lua,
            )
            tok = run_wrk(
                base + "/oauth2/token",
                connections=args.connections,
                seconds=args.seconds,
                script=token_lua,
            )
            rows.append((h, intro, tok))
            print(
                f"round {i + 1}: hello {h:8.0f} rps | introspect {intro:8.0f} rps ({intro / h:.2f}x)"
                f" | token {tok:8.0f} rps ({tok / h:.2f}x)",
                flush=True,
            )
    r_intro = median_ratio([(i, h) for h, i, _ in rows])
    r_token = median_ratio([(t, h) for h, _, t in rows])
    print(f"\ndatabase: {db.split(':')[0]}, connections: {args.connections}, rounds: {args.rounds}")
    print(f"median hello-world: {statistics.median(r[0] for r in rows):.0f} rps")
    print(
        f"introspection / hello-world: {r_intro:.2f}x  (target >= 0.50x) {'PASS' if r_intro >= 0.5 else 'MISS'}"
    )
    print(
        f"token issuance / hello-world: {r_token:.2f}x  (target >= 0.25x) {'PASS' if r_token >= 0.25 else 'MISS'}"
    )


if __name__ == "__main__":
    main()
