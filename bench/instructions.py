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
   with a warm cache — cf. `rs_overhead.py`.

    .venv/bin/python bench/instructions.py [--requests 2000]

Needs valgrind (`apt-get install valgrind`). Takes a few minutes (callgrind runs ~50x slower).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _harness import PY, ROOT, free_port, process


def send_requests(port: int, request: bytes, count: int, connections: int = 4) -> None:
    """`count` requests over `connections` keep-alive connections; every answer must be 200."""

    def worker(n: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            buffer = b""
            for _ in range(n):
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
        threading.Thread(target=worker, args=(count // connections,)) for _ in range(connections)
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
    args: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[tuple[int, Path]]:
    """Start `args` under callgrind; yields (pid, dump directory) once the port accepts."""
    out = tempfile.mkdtemp(prefix="tg-callgrind-")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{args} did not start under callgrind")
            time.sleep(0.2)
        yield proc.pid, Path(out)
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(out, ignore_errors=True)


def instructions_per_request(
    server: tuple[int, Path], port: int, request: bytes, count: int
) -> float:
    pid, out = server
    send_requests(port, request, 200)  # warm-up: imports, caches, specialisation
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    send_requests(port, request, count)
    before = set(glob.glob(str(out / f"cg.{pid}.*")))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    return _new_dump_total(out, pid, before) / count


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


def post(path: str, body: str, authorization: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Authorization: {authorization}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def basic(client: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def create_client(db: str, name: str, *extra: str) -> tuple[str, str]:
    out = subprocess.run(
        [PY, "-m", "tokengate", "clients", "create", name, "--scope", "read write",
         "--database", db, "--json", *extra],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    return data["client_id"], data["client_secret"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    n = args.requests
    db = f"sqlite:///{tempfile.mkdtemp(prefix='tg-instr-')}/instr.db"
    client, rs = create_client(db, "svc"), create_client(db, "rs", "--introspect")
    as_port = free_port()
    as_url = f"http://127.0.0.1:{as_port}"
    serve = [PY, "-m", "tokengate", "serve", "--database", db, "--log-level", "warning"]
    with process([*serve, "--port", str(as_port)], as_url + "/healthz"):
        token = httpx.post(
            as_url + "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(client)},
        ).json()["access_token"]
        hello_port = free_port()
        hello = [PY, "-m", "uvicorn", "hello_asgi:app", "--app-dir", str(ROOT / "bench"),
                 "--port", str(hello_port), "--loop", "uvloop", "--http", "httptools",
                 "--no-access-log", "--no-proxy-headers", "--log-level", "warning"]  # fmt: skip
        with under_callgrind(hello, hello_port) as cg:
            base = instructions_per_request(cg, hello_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", n)
        print(f"hello-world (GET /)            {base:9.0f} instructions/request", flush=True)
        port = free_port()
        with under_callgrind([*serve, "--port", str(port)], port) as cg:
            body = f"token={token}&token_type_hint=access_token"
            intro = instructions_per_request(
                cg, port, post("/oauth2/introspect", body, basic(rs)), n
            )
            issue = instructions_per_request(
                cg, port, post("/oauth2/token", "grant_type=client_credentials", basic(client)), n
            )
        print(f"introspection (cached token)   {intro:9.0f}  -> hello/introspection {base / intro:.2f}x"
              "  (wall-clock target >= 0.50x)")  # fmt: skip
        print(f"token issuance (SQLite)        {issue:9.0f}  -> hello/token         {base / issue:.2f}x"
              "  (wall-clock target >= 0.25x)", flush=True)  # fmt: skip
        env = {"TOKENGATE_RS_CLIENT_ID": rs[0], "TOKENGATE_RS_CLIENT_SECRET": rs[1]}
        port = free_port()
        example = [PY, "-m", "tokengate", "example-resource-server", "--port", str(port),
                   "--issuer", as_url, "--cache-max-ttl", "3600"]  # fmt: skip
        with under_callgrind(example, port, env) as cg:
            public = instructions_per_request(
                cg, port, b"GET /public/ping HTTP/1.1\r\nHost: x\r\n\r\n", n
            )
            guarded = f"GET /auth-api/hello HTTP/1.1\r\nHost: x\r\nX-Access-Token: {token}\r\n\r\n"
            protected = instructions_per_request(cg, port, guarded.encode(), n)
        print(f"RS unprotected /public/ping    {public:9.0f} instructions/request")
        print(f"RS protected, warm cache       {protected:9.0f}  -> protected/unprotected "
              f"{public / protected:.2f}x  (wall-clock target >= 0.85x)")  # fmt: skip


if __name__ == "__main__":
    main()
