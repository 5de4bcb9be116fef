"""Shared benchmark plumbing: start processes, run wrk, alternate A/B rounds, report ratios."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


@contextlib.contextmanager
def process(
    args: list[str], health_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        wait_up(health_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return wrk


def wrk_post_script(directory: Path, name: str, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {body!r}".replace("'", '"')]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRS = re.compile(r"Socket errors: (.*)")


def run_wrk(url: str, *, connections: int, seconds: float, script: Path | None = None) -> float:
    """Requests/second from one wrk run; fails loudly on any error response."""
    args = [require_wrk(), "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", url]
    if script is not None:
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    for pattern in (_NON2XX, _ERRS):
        found = pattern.search(out)
        if found:
            raise SystemExit(f"wrk saw errors against {url}: {found.group(0)}")
    match = _RPS.search(out)
    if match is None:
        raise SystemExit(f"unparseable wrk output:\n{out}")
    return float(match.group(1))


def median_ratio(samples: list[tuple[float, float]]) -> float:
    return statistics.median(a / b for a, b in samples)
