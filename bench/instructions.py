"""Instructions per request, counted by callgrind: the noise-free companion of the wrk benchmarks.

Wall-clock ratios on a shared 2-core machine drift by ±30% between runs; instruction counts do
not (valgrind's callgrind counts the same total for the same binary and input, whatever else
the machine is doing). Each server runs under callgrind; a fixed number of keep-alive requests
is sent after a warm-up, with the counters zeroed in between (`callgrind_control -z`), so only
request handling is counted. Printed as the ratio a throughput benchmark would show if every
instruction cost the same (kernel and syscall time are not counted: they add the same to both
sides of a ratio, so the wall-clock ratios are a little closer to 1 than these).

1. authorization server: bare ASGI hello-world (GET, same uvicorn settings) vs introspection
   (cached token) and token issuance (SQLite, durable) — cf. `as_throughput.py`;
2. example resource server: unprotected `GET /public/ping` vs protected `GET /auth-api/hello`
   with a warm cache — cf. `rs_overhead.py`;
3. the example resource server's cache miss (a never-seen token each, sequential) vs its warm
   hit, and the authorization server's own work for an uncached introspection — cf. the second
   half of `rs_overhead.py`;
4. `tokengate authz`: a warm `/decide` (nginx `auth_request` headers) vs the hello-world sent the
   same request and a bare `GET /` — cf. `edge.py`.

    .venv/bin/python bench/instructions.py [--requests 2000] [--misses 500] [--only as|rs|miss|decide]

Needs valgrind (`apt-get install valgrind`). Takes a few minutes (callgrind runs ~50x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from _harness import (
    FORM,
    PROTECTED_PATH,
    TOKEN_HEADER,
    authorization_server,
    create_client,
    example_rs_command,
    fetch_token,
    fetch_tokens,
    free_port,
    hello_command,
    port_open,
    process,
    rs_env,
    serve_command,
    tokengate,
)

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials


def send_requests(port: int, request: bytes, count: int, connections: int = 4) -> None:
    """`count` requests over `connections` keep-alive connections; every answer must be 200."""
    send_each(port, [request] * count, connections)


def send_each(port: int, requests: Sequence[bytes], connections: int = 4) -> None:
    """Each of `requests` once, spread over `connections` keep-alive connections (sequential on
    each); every answer must be 200."""

    def worker(share: Sequence[bytes]) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            buffer = b""
            for request in share:
                sock.sendall(request)
                while True:
                    head, sep, rest = buffer.partition(b"\r\n\r\n")
                    if sep:
                        length = _content_length(head)
                        if len(rest) >= length:
                            if not head.startswith(b"HTTP/1.1 200"):
                                raise SystemExit(f"unexpected answer: {head[:200]!r}")
                            buffer = rest[length:]
                            break
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise SystemExit("the server closed the connection")
                    buffer += chunk

    threads = [
        threading.Thread(target=worker, args=(requests[i::connections],))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@contextlib.contextmanager
def under_callgrind(
    args: list[str], port: int, env: Mapping[str, str] | None = None
) -> Iterator[tuple[int, Path]]:
    """Start `args` under callgrind; yields (pid, dump directory) once the port accepts."""
    out = Path(tempfile.mkdtemp(prefix="tg-callgrind-"))
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", *args]
    try:
        with process(command, port_open(port), env, timeout=180, stop_timeout=60) as proc:
            yield proc.pid, out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def instructions_per_request(
    server: tuple[int, Path], port: int, request: bytes, count: int
) -> float:
    """Instructions per answer to `count` copies of `request`, after 200 to warm up."""
    return instructions_per_each(server, port, [request] * 200, [request] * count)


def instructions_per_each(
    server: tuple[int, Path],
    port: int,
    warm_up: Sequence[bytes],
    requests: Sequence[bytes],
    connections: int = 4,
) -> float:
    """Instructions per answer to each of `requests`, counted after `warm_up` was answered."""
    pid, out = server
    send_each(port, warm_up, connections)  # imports, caches, specialisation
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    send_each(port, requests, connections)
    before = set(glob.glob(str(out / f"cg.{pid}.*")))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    return _new_dump_total(out, pid, before) / len(requests)


def _new_dump_total(out: Path, pid: int, before: set[str]) -> int:
    deadline = time.monotonic() + 30
    while not (files := set(glob.glob(str(out / f"cg.{pid}.*"))) - before):
        if time.monotonic() > deadline:
            raise SystemExit("callgrind wrote no dump")
        time.sleep(0.2)
    time.sleep(0.5)  # let the dump finish
    newest = max(files, key=os.path.getmtime)
    for line in Path(newest).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {newest}")


def post(path: str, body: str, client: ClientCredentials) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM}\r\n"
        f"Authorization: {client.basic_authorization()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def get(path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()


def authorization_server_ratios(
    db: str, client: ClientCredentials, rs: ClientCredentials, token: str, n: int
) -> None:
    """Hello-world vs introspection and token issuance, each under callgrind."""
    port = free_port()
    with under_callgrind(hello_command(port), port) as cg:
        base = instructions_per_request(cg, port, get("/"), n)
    print(f"hello-world (GET /)            {base:9.0f} instructions/request", flush=True)
    port = free_port()
    with under_callgrind(serve_command(port, db), port) as cg:
        body = f"token={token}&token_type_hint=access_token"
        intro = instructions_per_request(cg, port, post(INTROSPECT_PATH, body, rs), n)
        issue = instructions_per_request(
            cg, port, post(TOKEN_PATH, "grant_type=client_credentials", client), n
        )
    print(f"introspection (cached token)   {intro:9.0f}  -> hello/introspection {base / intro:.2f}x"
          "  (wall-clock target >= 0.80x)")  # fmt: skip
    print(f"token issuance (SQLite)        {issue:9.0f}  -> hello/token         {base / issue:.2f}x"
          "  (wall-clock target >= 0.35x)", flush=True)  # fmt: skip


def resource_server_ratio(as_url: str, rs: ClientCredentials, token: str, n: int) -> None:
    """The example resource server's unprotected vs protected (warm cache) path under callgrind."""
    port = free_port()
    with under_callgrind(example_rs_command(port, as_url), port, rs_env(rs)) as cg:
        public = instructions_per_request(cg, port, get("/public/ping"), n)
        guarded = get(PROTECTED_PATH, f"{TOKEN_HEADER}: {token}\r\n")
        protected = instructions_per_request(cg, port, guarded, n)
    print(f"RS unprotected /public/ping    {public:9.0f} instructions/request")
    print(f"RS protected, warm cache       {protected:9.0f}  -> protected/unprotected "
          f"{public / protected:.2f}x  (wall-clock target >= 0.85x)")  # fmt: skip


def cache_miss_ratio(
    db: str, as_url: str, client: ClientCredentials, rs: ClientCredentials, n: int
) -> None:
    """What a cache miss costs the example resource server (each request a token it has never
    seen, one connection, sequential: as `rs_overhead.py`) against a warm hit, and the
    authorization server's own work for an introspection of a token it has not cached."""
    tokens = asyncio.run(fetch_tokens(as_url, client, 2 * (n + _MISS_WARM_UP)))
    fresh = iter(tokens)
    port = free_port()
    with under_callgrind(example_rs_command(port, as_url), port, rs_env(rs)) as cg:
        guarded = [_guarded(next(fresh)) for _ in range(n + _MISS_WARM_UP)]
        miss = instructions_per_each(cg, port, guarded[:_MISS_WARM_UP], guarded[_MISS_WARM_UP:], 1)
        hit = [guarded[0]] * n
        warm = instructions_per_each(cg, port, hit[:_MISS_WARM_UP], hit, 1)
    port = free_port()
    with under_callgrind(serve_command(port, db), port) as cg:
        asks = [_introspection(next(fresh), rs) for _ in range(n + _MISS_WARM_UP)]
        direct = instructions_per_each(cg, port, asks[:_MISS_WARM_UP], asks[_MISS_WARM_UP:], 1)
    print(f"RS protected, warm hit (1 conn) {warm:8.0f} instructions/request")
    print(
        f"RS protected, cache miss        {miss:8.0f}  -> the miss adds {miss - warm:.0f} in the RS"
    )
    print(f"AS introspection, uncached      {direct:8.0f}  -> RS's miss work / AS's introspection "
          f"{(miss - warm) / direct:.2f}x; (RS miss + AS) / AS {(miss + direct) / direct:.2f}x"
          "  (wall-clock target <= 1.3x, with the caller's own cost on both sides)", flush=True)  # fmt: skip


_MISS_WARM_UP = 100


def _guarded(token: str) -> bytes:
    return get(PROTECTED_PATH, f"{TOKEN_HEADER}: {token}\r\n")


def _introspection(token: str, rs: ClientCredentials) -> bytes:
    return post(INTROSPECT_PATH, f"token={token}&token_type_hint=access_token", rs)


def decision_ratio(as_url: str, decider: ClientCredentials, token: str, n: int) -> None:
    """`/decide` (warm) vs the hello-world receiving the very same request, under callgrind."""
    headers = (
        f"X-Original-Method: GET\r\nX-Original-URI: /public/ping\r\n{TOKEN_HEADER}: {token}\r\n"
    )
    port = free_port()
    with under_callgrind(hello_command(port), port) as cg:
        bare = instructions_per_request(cg, port, get("/"), n)
        same = instructions_per_request(cg, port, get("/decide", headers), n)
    command = tokengate("authz", "--port", str(port := free_port()), "--issuer", as_url,
                        "--protect", "/**", "--log-level", "warning")  # fmt: skip
    env = {"TOKENGATE_AUTHZ_CLIENT_ID": decider.client_id,
           "TOKENGATE_AUTHZ_CLIENT_SECRET": decider.client_secret}  # fmt: skip
    with under_callgrind(command, port, env) as cg:
        decide = instructions_per_request(cg, port, get("/decide", headers), n)
    print(f"hello-world, bare GET /        {bare:9.0f} instructions/request")
    print(f"hello-world, the /decide request {same:7.0f}")
    print(f"authz /decide, warm cache      {decide:9.0f}  -> decide/hello (same request) "
          f"{same / decide:.2f}x, decide/hello (bare) {bare / decide:.2f}x"
          "  (wall-clock target >= 0.6x)")  # fmt: skip


SECTIONS = ["as", "rs", "miss", "decide"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--misses", type=int, default=500, help="cache-miss requests counted")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="(repeatable)")
    args = parser.parse_args()
    sections = args.only or SECTIONS
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    db = f"sqlite:///{tempfile.mkdtemp(prefix='tg-instr-')}/instr.db"
    client = create_client(db, "svc", scope="read write")
    rs = create_client(db, "rs", scope="read write", introspect=True)
    with authorization_server(db) as auth:
        token = fetch_token(auth.url, client)
        if "as" in sections:
            authorization_server_ratios(db, client, rs, token, args.requests)
        if "rs" in sections:
            resource_server_ratio(auth.url, rs, token, args.requests)
        if "miss" in sections:
            cache_miss_ratio(db, auth.url, client, rs, args.misses)
        if "decide" in sections:
            decision_ratio(auth.url, rs, token, args.requests)


if __name__ == "__main__":
    main()
