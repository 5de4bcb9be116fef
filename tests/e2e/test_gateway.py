"""The gateway as a real process, in both modes, in front of a real upstream process.

The upstream is `tests.gateway.echo_app` under uvicorn: it answers with the headers it received,
and the length and SHA-256 of the body it received. In introspect mode the gateway validates
against a real `tokengate serve` and follows its revocation events.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.dpop import bare_challenges
from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    running_server,
    wait_http,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT = 1.0
BIG = 64 * 1024 * 1024


@contextlib.contextmanager
def process(
    args: Sequence[str], health: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `args`, wait until `health` answers, stop it afterwards."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
    try:
        wait_http(health, proc=proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class Gateway:
    """A running gateway: its base URL and process id."""

    url: str
    pid: int


@contextlib.contextmanager
def gateway(
    upstream: str, logs: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    """`tokengate gateway --upstream UPSTREAM ARGS...` on a free port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    listen = ["--listen", f"127.0.0.1:{port}"]
    command = [*TOKENGATE, "gateway", "--upstream", upstream, *listen, *args]
    with process(command, base + "/_tokengate/healthz", logs / f"gateway-{port}.log", env) as proc:
        yield Gateway(base, proc.pid)


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def seen(response: httpx.Response, name: str) -> list[str]:
    """Every value of header `name` the echo upstream received."""
    return [v for k, v in response.json()["headers"] if k == name.lower()]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's processes write their logs."""
    return tmp_path_factory.mktemp("gateway-logs")


@pytest.fixture(scope="module")
def echo(logs: Path) -> Iterator[str]:
    """The echo upstream under uvicorn; yields its base URL."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "tests.gateway.echo_app:app", "--port", str(port)]
    with process([*args, "--log-level", "warning"], f"http://127.0.0.1:{port}/", logs / "echo.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def bypass(echo: str, logs: Path) -> Iterator[Gateway]:
    """A bypass-mode gateway in front of the echo upstream."""
    with gateway(echo, logs, "--read-timeout", str(READ_TIMEOUT)) as base:
        yield base


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The authorization server's SQLite database."""
    return f"sqlite:///{tmp_path_factory.mktemp('gw-as') / 'tokengate.db'}"


@pytest.fixture(scope="module")
def clients(database: str) -> dict[str, tuple[str, str]]:
    """An app client (read) and the gateway's introspection client."""
    return {
        "app": create_client(database, "app", "read write"),
        "gateway": create_client(database, "gateway", "", introspect=True),
    }


@pytest.fixture(scope="module")
def auth_server(
    database: str, clients: dict[str, tuple[str, str]], logs: Path
) -> Iterator[ServerProcess]:
    """`tokengate serve` for this module."""
    with running_server(database, log_dir=logs) as server:
        yield server


@pytest.fixture(scope="module")
def introspect(
    echo: str, auth_server: ServerProcess, clients: dict[str, tuple[str, str]], logs: Path
) -> Iterator[Gateway]:
    """An introspect-mode gateway in front of the echo upstream, following revocation events."""
    client_id, secret = clients["gateway"]
    args = [
        "--mode", "introspect",
        "--issuer", auth_server.issuer,
        "--client-id", client_id,
        "--protect", "/auth-api/**",
        "--require-scope", "POST /auth-api/items=write",
    ]  # fmt: skip
    with gateway(echo, logs, *args, env={"TOKENGATE_GW_CLIENT_SECRET": secret}) as base:
        yield base


def token(server: ServerProcess, client: tuple[str, str], scope: str) -> str:
    """An access token by client credentials."""
    response = httpx.post(
        server.base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=client,
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def test_bypass_forwards_the_token_header_untouched(bypass: Gateway) -> None:
    """X-Access-Token and Authorization reach the upstream byte for byte; XFF is appended."""
    headers = {"X-Access-Token": "tgat_abc.DEF-123", "Authorization": "Bearer tgat_abc.DEF-123"}
    response = httpx.get(
        bypass.url + "/auth-api/hello?x=1", headers={**headers, "X-Auth-Subject": "x"}
    )
    assert response.status_code == 200
    assert seen(response, "x-access-token") == ["tgat_abc.DEF-123"]
    assert seen(response, "authorization") == ["Bearer tgat_abc.DEF-123"]
    assert seen(response, "x-auth-subject") == ["x"]  # bypass leaves every end-to-end header
    assert seen(response, "x-forwarded-for") == ["127.0.0.1"]
    assert response.json()["query"] == "x=1"


def test_bypass_strips_hop_by_hop_both_ways(bypass: Gateway) -> None:
    """Connection-named headers stop at the gateway, in the request and in the response."""
    response = httpx.get(bypass.url + "/x", headers={"Connection": "X-Private", "X-Private": "p"})
    assert seen(response, "x-private") == []
    assert "x-upstream-private" not in response.headers  # named in the upstream's Connection
    assert response.headers["x-upstream"] == "echo"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_introspect_mode_refuses_and_forwards_claims(
    introspect: Gateway, auth_server: ServerProcess, clients: dict[str, tuple[str, str]]
) -> None:
    """No token 401, read token on a write route 403, valid token 200 with claim headers."""
    reader = token(auth_server, clients["app"], "read")
    missing = httpx.get(introspect.url + "/auth-api/hello")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == bare_challenges("tokengate")
    denied = httpx.post(introspect.url + "/auth-api/items", headers={"X-Access-Token": reader})
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    spoof = {"X-Auth-Subject": "admin", "X-Auth-Scope": "admin", "X_Auth_Client_Id": "root"}
    ok = httpx.get(introspect.url + "/auth-api/hello", headers={"X-Access-Token": reader, **spoof})
    assert ok.status_code == 200
    app_id = clients["app"][0]
    assert seen(ok, "x-auth-subject") == [app_id]
    assert seen(ok, "x-auth-client-id") == [app_id]
    assert seen(ok, "x-auth-scope") == ["read"]
    assert seen(ok, "x_auth_client_id") == []


def test_introspect_mode_strips_spoofed_claims_on_public_paths(introspect: Gateway) -> None:
    """An unprotected path passes without a token, and without any client-sent X-Auth-*."""
    spoof = {"X-Auth-Subject": "admin", "x-auth-scope": "admin", "X_Auth_Client_Id": "root"}
    response = httpx.get(introspect.url + "/public/ping", headers=spoof)
    assert response.status_code == 200
    names = {k for k, _ in response.json()["headers"]}
    assert names.isdisjoint(
        {"x-auth-subject", "x-auth-scope", "x-auth-client-id", "x_auth_client_id"}
    )


def test_introspect_mode_sees_revocations_at_once(
    introspect: Gateway, auth_server: ServerProcess, clients: dict[str, tuple[str, str]]
) -> None:
    """A cached token is refused within a second of its revocation (revocation events)."""
    value = token(auth_server, clients["app"], "read")
    headers = {"X-Access-Token": value}
    assert httpx.get(introspect.url + "/auth-api/hello", headers=headers).status_code == 200
    metrics = httpx.get(introspect.url + "/_tokengate/metrics").text
    assert "tokengate_rs_revocation_stream_state 3.0" in metrics  # live
    revoked = httpx.post(
        auth_server.base_url + "/oauth2/revoke", data={"token": value}, auth=clients["app"]
    )
    assert revoked.status_code == 200
    deadline = time.monotonic() + 1.0
    while (
        status := httpx.get(introspect.url + "/auth-api/hello", headers=headers).status_code
    ) == 200:
        assert time.monotonic() < deadline, "still accepted a second after revocation"
        time.sleep(0.02)
    assert status == 401


def test_dead_upstream_is_502_fast(logs: Path) -> None:
    """Nothing listens upstream: 502 with a JSON body, at once."""
    with gateway(f"http://127.0.0.1:{free_port()}", logs) as base:
        started = time.monotonic()
        response = httpx.get(base.url + "/anything", timeout=10)
        elapsed = time.monotonic() - started
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
    assert elapsed < 1.0


def test_slow_upstream_is_504_within_the_read_timeout(bypass: Gateway) -> None:
    """An upstream slower than --read-timeout: 504 shortly after the timeout, not a hang."""
    started = time.monotonic()
    response = httpx.get(bypass.url + "/slow?seconds=5", timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"] == "gateway_timeout"
    assert READ_TIMEOUT <= elapsed < READ_TIMEOUT + 1.0


def test_large_bodies_stream_through_both_ways(bypass: Gateway) -> None:
    """64 MiB up and 64 MiB down pass intact, and the gateway's memory does not grow with them."""
    before = rss_kib(bypass.pid)
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256(block * (BIG // len(block))).hexdigest()

    def upload() -> Iterator[bytes]:
        for _ in range(BIG // len(block)):
            yield block

    sent = httpx.post(bypass.url + "/upload", content=upload(), timeout=60)
    assert sent.json()["body_length"] == BIG
    assert sent.json()["body_sha256"] == digest
    received = 0
    with httpx.stream(
        "GET", bypass.url + f"/stream?chunks={BIG // 65536}&size=65536", timeout=60
    ) as down:
        assert down.status_code == 200
        for chunk in down.iter_raw():
            received += len(chunk)
    assert received == BIG
    assert rss_kib(bypass.pid) - before < 32 * 1024  # far less than one body
