"""Revocation events pushed to real resource-server processes: replicas, outages, replay.

Resource servers cache for the whole token lifetime (`--cache-max-ttl 3600`), so a 401 soon
after a revocation can only come from the event reaching them, not from a cache entry expiring.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import fresh_database
from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    run_cli,
    running_server,
    wait_http,
)

pytestmark = pytest.mark.e2e

TOKEN_LIFETIME = 3600
PUSH_BUDGET = 1.0  # seconds from the revocation's 200 to a 401 at every resource server
OUTAGE_TTL = 1.0


@contextlib.contextmanager
def resource_server(
    issuer: str, rs_client: tuple[str, str], log_dir: Path, *extra: str
) -> Iterator[str]:
    """`tokengate example-resource-server` following `issuer`; yields its base URL."""
    port = free_port()
    args = [
        *TOKENGATE,
        "example-resource-server",
        "--port",
        str(port),
        "--issuer",
        issuer,
        "--client-id",
        rs_client[0],
        "--cache-max-ttl",
        str(TOKEN_LIFETIME),
        *extra,
    ]
    env = {**os.environ, "TOKENGATE_RS_CLIENT_SECRET": rs_client[1]}
    log_path = log_dir / f"resource-server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/public/ping", proc=process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def status(rs: str) -> dict[str, Any]:
    """The resource server's `/public/status` document."""
    document: dict[str, Any] = httpx.get(rs + "/public/status", timeout=5).json()
    return document


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` every 10 ms; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"{what} not within {timeout}s")


def wait_live(*servers: str, timeout: float = 20.0) -> None:
    """Every resource server has caught up with its event stream."""
    for rs in servers:
        wait_for(lambda rs=rs: status(rs)["revocation_events"]["state"] == "live", timeout, rs)


def issue(server: ServerProcess, client: tuple[str, str]) -> str:
    response = httpx.post(
        server.base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=client,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def call(rs: str, token: str) -> int:
    return httpx.get(rs + "/auth-api/hello", headers={"X-Access-Token": token}).status_code


def introspection_calls(rs: str) -> float:
    return float(status(rs)["stats"]["introspection_calls"])


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Where this test's processes write their logs."""
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.mark.postgres
def test_two_replicas_push_revocations_to_every_resource_server(logs: Path) -> None:
    """Replicas on one PostgreSQL: revoke on A → 401 at the resource servers of A and of B."""
    with fresh_database() as db:
        app = create_client(db, "app", "read", ttl=TOKEN_LIFETIME)
        rs_client = create_client(db, "rs", "", introspect=True)
        with (
            running_server(db, log_dir=logs) as replica_a,
            running_server(db, log_dir=logs) as replica_b,
            resource_server(replica_a.issuer, rs_client, logs) as rs_a,
            resource_server(replica_b.issuer, rs_client, logs) as rs_b,
        ):
            wait_live(rs_a, rs_b)
            token = issue(replica_a, app)
            answer = httpx.post(
                replica_b.base_url + "/oauth2/introspect", data={"token": token}, auth=rs_client
            )
            assert answer.json()["active"] is True  # issued by A, known to B
            for rs in (rs_a, rs_b):
                assert [call(rs, token) for _ in range(3)] == [200, 200, 200]
                assert introspection_calls(rs) == 1  # cached, not re-asked

            revoked = httpx.post(
                replica_a.base_url + "/oauth2/revoke", data={"token": token}, auth=app
            )
            assert revoked.status_code == 200
            latencies = [
                wait_for(lambda rs=rs: call(rs, token) == 401, 5.0, f"401 at {rs}")
                for rs in (rs_a, rs_b)
            ]
            print(f"revocation → 401: A {latencies[0]:.3f}s, B {latencies[1]:.3f}s")
            assert max(latencies) < PUSH_BUDGET

            other = issue(replica_b, app)
            assert call(rs_a, other) == 200
            assert call(rs_b, other) == 200
            run_cli("clients", "disable", app[0], "--database", db)
            for rs in (rs_a, rs_b):
                wait_for(lambda rs=rs: call(rs, other) == 401, PUSH_BUDGET, "client disabled")
                assert status(rs)["stats"]["revocation_events_applied"] >= 2


def revoke_offline(database: str, token: str) -> None:
    """`tokengate tokens revoke -` with the token on standard input (not in the process list)."""
    subprocess.run(
        [*TOKENGATE, "tokens", "revoke", "-", "--database", database],
        input=token,
        text=True,
        capture_output=True,
        check=True,
        timeout=60,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh PostgreSQL database (skipped when absent, not in CI)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tokengate.db'}"
        return
    with fresh_database() as url:
        yield url


def test_outage_caps_the_cache_and_replay_catches_up(database: str, logs: Path) -> None:
    """AS down: caching is bounded; a revocation meanwhile is replayed after reconnection."""
    app = create_client(database, "app", "read", ttl=TOKEN_LIFETIME)
    rs_client = create_client(database, "rs", "", introspect=True)
    with running_server(database, log_dir=logs) as server:
        outage_ttl = ("--outage-cache-ttl", str(OUTAGE_TTL))
        with resource_server(server.issuer, rs_client, logs, *outage_ttl) as rs:
            wait_live(rs)
            valid, doomed = issue(server, app), issue(server, app)
            assert (call(rs, valid), call(rs, doomed)) == (200, 200)
            assert status(rs)["cache"]["ttl_cap"] is None
            applied = status(rs)["stats"]["revocation_events_applied"]

            server.stop(kill=True)
            wait_for(lambda: status(rs)["cache"]["ttl_cap"] == OUTAGE_TTL, 5.0, "outage cap")
            during = status(rs)
            assert during["revocation_events"]["state"] in ("disconnected", "connecting")
            assert during["stats"]["cache_ttl_cap_seconds"] == OUTAGE_TTL
            time.sleep(OUTAGE_TTL)
            assert call(rs, valid) == 503  # too old to trust, and nobody to ask
            revoke_offline(database, doomed)

            server.start()
            wait_live(rs)
            assert status(rs)["stats"]["revocation_events_applied"] == applied + 1
            assert status(rs)["cache"]["ttl_cap"] is None
            assert call(rs, doomed) == 401  # its cache entry was evicted by the replayed event
            assert call(rs, valid) == 200
            assert status(rs)["stats"]["revocation_stream_reconnects"] >= 1
    rs_logs = "".join(p.read_text(errors="replace") for p in logs.glob("resource-server-*"))
    assert "revocation events lost" in rs_logs
    assert "revocation events live" in rs_logs
    for secret in (valid, doomed, app[1], rs_client[1]):
        assert secret not in rs_logs
