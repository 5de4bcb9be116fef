"""Start real `tokengate` processes on loopback with random free ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TOKENGATE = [sys.executable, "-m", "tokengate"]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run `tokengate ARGS...` and return its standard output."""
    proc = subprocess.run(
        [*TOKENGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tokengate {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def create_client(
    database_url: str,
    name: str,
    scopes: str,
    *,
    introspect: bool = False,
    audiences: Sequence[str] = (),
    ttl: int | None = None,
) -> tuple[str, str]:
    """Create a client through the CLI; returns (client_id, client_secret)."""
    args = ["clients", "create", name, "--scope", scopes, "--database", database_url, "--json"]
    if introspect:
        args.append("--introspect")
    for aud in audiences:
        args += ["--audience", aud]
    if ttl is not None:
        args += ["--token-ttl", str(ttl)]
    out = json.loads(run_cli(*args))
    return out["client_id"], out["client_secret"]


def wait_http(
    url: str,
    timeout: float = 20.0,
    proc: subprocess.Popen[bytes] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Poll `url` until it answers (any status), or fail; `verify` as httpx's (https://)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1.0, verify=verify)
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not come up within {timeout}s")


@dataclass
class ServerProcess:
    """A running `tokengate serve` (restartable on the same port and database)."""

    database_url: str
    port: int
    issuer: str
    log_path: Path
    extra_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        args = [
            *TOKENGATE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database",
            self.database_url,
            "--issuer",
            self.issuer,
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        wait_http(self.base_url + "/healthz", proc=self.process)
        return self

    def stop(self, kill: bool = False) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(
    database_url: str,
    issuer: str | None = None,
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """Start `tokengate serve` on a free port; stop it afterwards."""
    port = port or free_port()
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    server = ServerProcess(
        database_url=database_url,
        port=port,
        issuer=issuer or f"http://127.0.0.1:{port}",
        log_path=log_dir / f"tokengate-serve-{port}.log",
        extra_args=extra_args,
        env=env or {},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_process(
    args: Sequence[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` (output to `log_path`) until the block ends; ready once `health_url` answers.
    `preexec_fn` runs in the child before it starts (e.g. to lower its resource limits)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,  # noqa: PLW1509 - only setrlimit, no threads in the child
        )
    try:
        wait_http(health_url, proc=process, verify=verify)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
