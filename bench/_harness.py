"""The one benchmark harness: clients and tokens, server processes, wrk, A/B rounds.

Clients are made through the CLI (`tokengate clients create --json`) and authenticate with the
library's own RFC 6749 §2.3.1 Basic encoding (`ClientCredentials.basic_authorization`: id and
secret form-urlencoded, then base64). Every process logs to a temporary file and is polled
until it answers (or dies); every wrk run is parsed once, errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FORM = "application/x-www-form-urlencoded"
TOKEN_HEADER = "X-Access-Token"  # what the example resource server reads
PROTECTED_PATH = "/auth-api/hello"

# -- clients and tokens ------------------------------------------------------------------------


def tokengate(*args: str) -> list[str]:
    """The command line running the tokengate CLI with this interpreter."""
    return [PY, "-m", "tokengate", *args]


def cli(*args: str) -> str:
    """Run the tokengate CLI; its stdout."""
    return subprocess.run(tokengate(*args), capture_output=True, text=True, check=True).stdout


def create_client(
    db: str,
    name: str,
    *,
    scope: str | None = None,
    introspect: bool = False,
    token_ttl: int | None = None,
) -> ClientCredentials:
    """`tokengate clients create NAME --json`: the new client's id and secret."""
    args = ["clients", "create", name, "--database", db, "--json"]
    args += ["--scope", scope] if scope is not None else []
    args += ["--introspect"] if introspect else []
    args += ["--token-ttl", str(token_ttl)] if token_ttl is not None else []
    document = json.loads(cli(*args))
    return ClientCredentials(document["client_id"], document["client_secret"])


def basic(client: ClientCredentials) -> dict[str, str]:
    """The `Authorization: Basic` header of RFC 6749 §2.3.1 for `client`."""
    return {"Authorization": client.basic_authorization()}


def token_form(scope: str | None = None) -> dict[str, str]:
    """RFC 6749 §4.4.2 client credentials request."""
    return {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}


def _access_token(response: httpx.Response) -> str:
    response.raise_for_status()
    return str(response.json()["access_token"])


def fetch_token(as_url: str, client: ClientCredentials, http: httpx.Client | None = None) -> str:
    """One access token from the token endpoint."""
    post = http.post if http is not None else httpx.post
    return _access_token(post(as_url + TOKEN_PATH, data=token_form(), headers=basic(client)))


def introspect(
    as_url: str, rs: ClientCredentials, token: str, http: httpx.Client | None = None
) -> dict[str, Any]:
    """RFC 7662 §2.1 introspection of `token` with the resource server's credentials."""
    post = http.post if http is not None else httpx.post
    response = post(as_url + INTROSPECT_PATH, data={"token": token}, headers=basic(rs))
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _pooled() -> httpx.AsyncClient:
    limits, timeout = httpx.Limits(max_connections=32), httpx.Timeout(30, pool=None)
    return httpx.AsyncClient(limits=limits, timeout=timeout)


async def fetch_tokens(
    as_url: str, client: ClientCredentials, count: int, *, scope: str | None = None
) -> list[str]:
    """`count` access tokens, fetched over 32 concurrent connections."""
    async with _pooled() as http:

        async def one() -> str:
            form, headers = token_form(scope), basic(client)
            return _access_token(await http.post(as_url + TOKEN_PATH, data=form, headers=headers))

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def warm_resource_servers(servers: Sequence[str], tokens: Sequence[str]) -> None:
    """Send every token once to every resource server (cached from then on); all must be 200."""
    async with _pooled() as http:
        answers = await asyncio.gather(
            *(
                http.get(rs + PROTECTED_PATH, headers={TOKEN_HEADER: token})
                for rs in servers
                for token in tokens
            )
        )
    statuses = Counter(answer.status_code for answer in answers)
    if set(statuses) != {200}:
        raise SystemExit(f"resource-server warm-up saw statuses {dict(statuses)}")


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def http_up(url: str) -> Callable[[], bool]:
    """Ready once `url` answers anything over HTTP."""

    def check() -> bool:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return True
        return False

    return check


def port_open(port: int) -> Callable[[], bool]:
    """Ready once the loopback `port` accepts a connection."""

    def check() -> bool:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        return False

    return check


def _wait_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, log: str
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}; log: {log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{proc.args!r} was not ready within {timeout:g} s; log: {log}")
        time.sleep(0.05)


@contextlib.contextmanager
def process(
    args: list[str],
    ready: str | Callable[[], bool],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 20,
    stop_timeout: float = 10,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` (output to a temporary log) until the block ends; `ready`: a health URL or check."""
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        check = http_up(ready) if isinstance(ready, str) else ready
        _wait_ready(proc, check, timeout, log.name)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def serve_command(port: int, db: str, *extra: str, log_level: str = "warning") -> list[str]:
    """`tokengate serve` on `port` with `db`."""
    return tokengate(
        "serve", "--port", str(port), "--database", db, "--log-level", log_level, *extra
    )


def hello_command(port: int, *, proxy_headers: bool = False, http: str = "httptools") -> list[str]:
    """The bare ASGI baseline under uvicorn: 1 worker, uvloop, httptools, no access log (`http`
    names uvicorn's other parser, h11, with the same head limit as tokengate's servers)."""
    args = [PY, "-m", "uvicorn", "hello_asgi:app", "--app-dir", str(ROOT / "bench")]
    args += ["--port", str(port), "--loop", "uvloop", "--http", http, "--no-access-log"]
    args += ["--h11-max-incomplete-event-size", str(32 * 1024)] if http == "h11" else []
    # without proxy headers: as `tokengate serve` (proxy_headers=False)
    args += [] if proxy_headers else ["--no-proxy-headers"]
    return [*args, "--log-level", "warning"]


def example_rs_command(port: int, issuer: str, *extra: str, cache_max_ttl: int = 3600) -> list[str]:
    """`tokengate example-resource-server` following `issuer`; credentials come from `rs_env`."""
    args = ["example-resource-server", "--port", str(port), "--issuer", issuer]
    return tokengate(*args, "--cache-max-ttl", str(cache_max_ttl), *extra)


def rs_env(rs: ClientCredentials) -> dict[str, str]:
    """The example resource server's own credentials, passed in its environment."""
    return {"TOKENGATE_RS_CLIENT_ID": rs.client_id, "TOKENGATE_RS_CLIENT_SECRET": rs.client_secret}


@dataclass(frozen=True)
class Server:
    """A started server: its base URL and process id."""

    url: str
    pid: int


@contextlib.contextmanager
def server(
    command: Callable[[int], list[str]], health_path: str, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Run `command(port)` on a free loopback port until the block ends; ready at `health_path`."""
    port = free_port()
    with process(command(port), local_url(port) + health_path, env) as proc:
        yield Server(local_url(port), proc.pid)


def authorization_server(
    db: str, *extra: str, log_level: str = "warning"
) -> contextlib.AbstractContextManager[Server]:
    """`tokengate serve` on a free port, ready at `/healthz`."""
    return server(lambda port: serve_command(port, db, *extra, log_level=log_level), "/healthz")


def hello_server(
    *, proxy_headers: bool = False, http: str = "httptools"
) -> contextlib.AbstractContextManager[Server]:
    """The bare ASGI hello-world on a free port."""
    return server(lambda port: hello_command(port, proxy_headers=proxy_headers, http=http), "/")


def limited_hello_server() -> contextlib.AbstractContextManager[Server]:
    """The same hello-world under tokengate's serving setup (limited httptools protocol)."""
    return server(lambda port: [PY, str(ROOT / "bench" / "hello_asgi.py"), str(port)], "/")


def example_resource_server(
    issuer: str, rs: ClientCredentials, *extra: str, cache_max_ttl: int = 3600
) -> contextlib.AbstractContextManager[Server]:
    """The example resource server on a free port, ready at `/public/ping`."""

    def command(port: int) -> list[str]:
        return example_rs_command(port, issuer, *extra, cache_max_ttl=cache_max_ttl)

    return server(command, "/public/ping", rs_env(rs))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process `pid` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/PID/task/TID/children)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by `pid` and its live descendants (workers of a supervisor)."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(member)
    return total


def scheduled(pid: int) -> tuple[float, float]:
    """Seconds the threads of `pid` have run on a CPU, and waited runnable for one, so far
    (/proc/PID/task/TID/schedstat: nanoseconds, unlike the clock ticks of `cpu_seconds`)."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            ran, waited, _ = (task / "schedstat").read_text().split()
            run, wait = run + int(ran), wait + int(waited)
    return run / 1e9, wait / 1e9


# -- wrk ---------------------------------------------------------------------------------------


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return wrk


def lua_string(value: str) -> str:
    """`value` as a Lua string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(
    directory: Path,
    name: str,
    headers: Mapping[str, str],
    *,
    method: str | None = None,
    body: str | None = None,
) -> Path:
    """A wrk Lua script sending `headers` (and `method`/`body` when given) on every request."""
    lines = [f"wrk.method = {lua_string(method)}"] if method is not None else []
    lines += [f"wrk.body = {lua_string(body)}"] if body is not None else []
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk_post_script(directory: Path, name: str, body: str, headers: Mapping[str, str]) -> Path:
    """A wrk script POSTing the form `body` with `headers`."""
    headers = {"Content-Type": FORM, **headers}
    return wrk_script(directory, name, headers, method="POST", body=body)


def wrk_command(
    url: str,
    *,
    connections: int,
    seconds: float,
    script: Path | None = None,
    timeout: float | None = None,
) -> list[str]:
    """One wrk thread, `connections` connections, latency percentiles on."""
    args = [require_wrk(), "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
    args += ["--timeout", f"{timeout:g}s"] if timeout is not None else []
    args += ["-s", str(script)] if script is not None else []
    return [*args, url]


def start_wrk(url: str, **options: Any) -> subprocess.Popen[str]:
    """Start wrk in the background (for runs side by side); read its stdout with `parse_wrk`."""
    command = wrk_command(url, **options)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_DONE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m),")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_PERCENTILE = re.compile(r"^\s+(\d+%)\s+([\d.]+)(us|ms|s|m)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkResult:
    """One wrk run, parsed."""

    requests: int
    seconds: float
    rps: float
    non_2xx: int
    socket_errors: dict[str, int]
    percentiles: dict[str, float]  # "50%" → ms
    raw: str

    @property
    def errors(self) -> int:
        """Non-2xx/3xx answers plus socket errors (connect, read, write, timeout)."""
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk(out: str) -> WrkResult:
    """Parse wrk's report (run with `--latency`)."""
    done, rps = _DONE.search(out), _RPS.search(out)
    if done is None or rps is None:
        raise SystemExit(f"unparseable wrk output:\n{out}")
    sockets, non_2xx = _SOCKET.search(out), _NON2XX.search(out)
    names = ("connect", "read", "write", "timeout")
    return WrkResult(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS_MS[done.group(3)] / 1e3,
        rps=float(rps.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(names, map(int, sockets.groups()), strict=True)) if sockets else {},
        percentiles={p: float(v) * _UNITS_MS[u] for p, v, u in _PERCENTILE.findall(out)},
        raw=out,
    )


def wrk_result(
    url: str, *, connections: int, seconds: float, script: Path | None = None
) -> WrkResult:
    """One wrk run, parsed; fails loudly on any error response."""
    command = wrk_command(url, connections=connections, seconds=seconds, script=script)
    result = parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    if result.errors:
        raise SystemExit(
            f"wrk saw errors against {url}: non-2xx {result.non_2xx}, socket {result.socket_errors}"
        )
    return result


def run_wrk(url: str, *, connections: int, seconds: float, script: Path | None = None) -> float:
    """Requests/second from one wrk run; fails loudly on any error response."""
    return wrk_result(url, connections=connections, seconds=seconds, script=script).rps


# -- A/B rounds --------------------------------------------------------------------------------

Row = dict[str, float]


def alternate(
    cases: Mapping[str, Callable[[], float]],
    rounds: int,
    *,
    shuffle: bool = False,
    report: Callable[[int, Row], None] | None = None,
) -> list[Row]:
    """`rounds` rows of one sample per case, in order (or shuffled) so drift hits all alike."""
    rows: list[Row] = []
    names = list(cases)
    for index in range(rounds):
        if shuffle:
            random.shuffle(names)
        rows.append({name: cases[name]() for name in names})
        if report is not None:
            report(index, rows[-1])
    return rows


def column(rows: Sequence[Row], name: str) -> list[float]:
    """The samples of one case."""
    return [row[name] for row in rows]


def wrk_arguments(
    parser: argparse.ArgumentParser, *, rounds: int = 5, seconds: float = 5, connections: int = 32
) -> None:
    """The options every wrk benchmark takes: alternating rounds, seconds per run, connections."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--connections", type=int, default=connections)


def median_ratio(rows: Sequence[Row], top: str, bottom: str) -> float:
    """Median over rounds of the per-round ratio `top / bottom`."""
    return statistics.median(row[top] / row[bottom] for row in rows)
