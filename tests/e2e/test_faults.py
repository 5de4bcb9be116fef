"""Faults under load: the authorization server killed and restarted, PostgreSQL restarted.

Every answer during the fault is clean (a 503 with Retry-After, or a refused connection while
the process is down): never a 500, never a hang. Afterwards nothing acknowledged is lost: every
token that got a 200 is active, every revocation that got a 200 holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import fresh_database
from tests.support.servers import ServerProcess, create_client, running_server, wait_http

pytestmark = pytest.mark.e2e


@dataclass
class Load:
    """Issue and revoke tokens in a loop on a few threads; remember what was acknowledged."""

    base: str
    client: tuple[str, str]
    issued: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)  # revocation sent, answer lost
    statuses: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, auth=self.client, timeout=15) as http:
            while not self.stop.is_set():
                self._one(http)

    def _one(self, http: httpx.Client) -> None:
        started = time.monotonic()
        try:
            response = http.post("/oauth2/token", data={"grant_type": "client_credentials"})
        except httpx.TransportError:
            self.statuses["refused"] += 1
            time.sleep(0.02)
            return
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[str(response.status_code)] += 1
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0
        if response.status_code != 200:
            return
        token = response.json()["access_token"]
        self.issued.append(token)
        if len(self.issued) % 5 == 0:
            try:
                revoke = http.post("/oauth2/revoke", data={"token": token})
            except httpx.TransportError:  # it may have committed before the process died
                self.uncertain.append(token)
                return
            if revoke.status_code == 200:
                self.revoked.append(token)
            else:
                self.uncertain.append(token)


def _run_load(load: Load, threads: int = 4) -> list[threading.Thread]:
    workers = [threading.Thread(target=load.run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def _finish(load: Load, workers: list[threading.Thread]) -> None:
    load.stop.set()
    for worker in workers:
        worker.join(timeout=30)
        assert not worker.is_alive(), "a client hung"


def _check_nothing_lost(server: ServerProcess, rs: tuple[str, str], load: Load) -> None:
    revoked, uncertain = set(load.revoked), set(load.uncertain)
    assert len(uncertain) < 10
    with httpx.Client(base_url=server.base_url, auth=rs, timeout=15) as http:
        for token in load.issued:
            if token in uncertain:
                continue
            active = http.post("/oauth2/introspect", data={"token": token}).json()["active"]
            assert active is (token not in revoked)


@pytest.mark.parametrize("signal", ["terminate", "kill"])
def test_server_restart_under_load_loses_nothing(
    database_url: str, tmp_path: Path, signal: str
) -> None:
    """Stop (SIGTERM or SIGKILL) and restart the server mid-load: every 200 survives."""
    client = create_client(database_url, "svc", "read", ttl=3600)
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        load = Load(server.base_url, client)
        workers = _run_load(load)
        time.sleep(1.0)
        server.stop(kill=signal == "kill")
        time.sleep(0.5)
        server.start()
        time.sleep(1.0)
        _finish(load, workers)
        assert set(load.statuses) <= {"200", "refused", "503"}, load.statuses
        assert load.statuses["200"] > 50
        _check_nothing_lost(server, rs, load)
        assert "Traceback" not in server.logs()


def _pg_ctl(action: str, *, check: bool = True) -> None:
    clusters = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not clusters or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must be able to restart the local PostgreSQL (pg_ctlcluster as root)")
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", action],
        check=check, timeout=120, capture_output=True,
    )  # fmt: skip


@pytest.mark.postgres
def test_postgres_restart_under_load(tmp_path: Path) -> None:
    """PostgreSQL restarts under load: 503s with Retry-After meanwhile, recovery without a
    server restart, and no acknowledged token or revocation lost."""
    with fresh_database() as url:
        client = create_client(url, "svc", "read", ttl=3600)
        rs = create_client(url, "rs", "", introspect=True)
        with running_server(url, log_dir=tmp_path) as server:
            load = Load(server.base_url, client)
            workers = _run_load(load)
            time.sleep(1.0)
            try:
                _pg_ctl("restart")
            finally:
                # Never leave the machine without it ("already running" exits 2: fine).
                _pg_ctl("start", check=False)
            deadline = time.monotonic() + 30
            while load.statuses["200"] == 0 or time.monotonic() < deadline:
                before = load.statuses["200"]
                time.sleep(1.0)
                if load.statuses["200"] > before:
                    break
            time.sleep(1.0)
            _finish(load, workers)
            wait_http(server.base_url + "/healthz")
            assert set(load.statuses) <= {"200", "503"}, load.statuses
            assert load.slowest < 15, f"a request took {load.slowest:.1f}s"
            _check_nothing_lost(server, rs, load)
