"""A real `tokengate serve` and a real `tokengate authz` in front of it, for edge tests.

The authz protects `/auth-api/**`, needs scope `write` for `POST /auth-api/items`, and caches
an answer as long as a token lives (revocation events end it early).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    running_server,
    wait_http,
)

TOKEN_TTL = 600


@dataclass(frozen=True)
class EdgeStack:
    """The authorization server, the decision service's base URL, and a client with `read`."""

    server: ServerProcess
    authz_url: str
    client: tuple[str, str]
    authz: subprocess.Popen[bytes]

    def token(self) -> str:
        """A fresh access token (scope `read`)."""
        form = {"grant_type": "client_credentials"}
        answer = httpx.post(self.server.base_url + "/oauth2/token", data=form, auth=self.client)
        return str(answer.json()["access_token"])

    def revoke(self, token: str) -> None:
        """Revoke `token` at the authorization server (RFC 7009)."""
        url = self.server.base_url + "/oauth2/revoke"
        httpx.post(url, data={"token": token}, auth=self.client).raise_for_status()

    def stop_authz(self) -> None:
        """Stop the decision service (the proxies then get no answer at all)."""
        stop(self.authz)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate `proc`, killing it if it does not exit within 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def edge_stack(tmp: Path) -> Iterator[EdgeStack]:
    """Start `tokengate serve` and `tokengate authz` on free ports; stop both afterwards."""
    database = f"sqlite:///{tmp / 'tokengate.db'}"
    client = create_client(database, "svc", "read", ttl=TOKEN_TTL)
    authz_id, authz_secret = create_client(database, "authz", "", introspect=True)
    secret_file = tmp / "authz-secret"
    secret_file.write_text(authz_secret)
    with running_server(database, log_dir=tmp) as server:
        port = free_port()
        args = [*TOKENGATE, "authz", "--port", str(port), "--issuer", server.issuer,
                "--client-id", authz_id, "--client-secret-file", str(secret_file),
                "--protect", "/auth-api/**", "--require-scope", "POST /auth-api/items=write",
                "--cache-max-ttl", str(TOKEN_TTL)]  # fmt: skip
        with (tmp / "authz.log").open("ab") as log:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
            yield EdgeStack(server, f"http://127.0.0.1:{port}", client, proc)
        finally:
            stop(proc)


@contextlib.contextmanager
def echo_upstream(tmp: Path) -> Iterator[str]:
    """`tests.gateway.echo_app` under uvicorn on a free port; yields its base URL."""
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    args = [sys.executable, "-m", "uvicorn", "tests.gateway.echo_app:app", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    with (tmp / "echo.log").open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc=proc)
        yield url
    finally:
        stop(proc)
