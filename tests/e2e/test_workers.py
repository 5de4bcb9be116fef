"""`tokengate serve --workers N`: N processes on one port that behave as one server.

Every worker caches authenticated clients and token records; a revocation or a client change
made through one worker must be honoured by every other within 50 ms, on SQLite (the event log
polled every 25 ms) and on PostgreSQL (LISTEN/NOTIFY). Which worker answers is read from
`/healthz` on the same keep-alive connection (`tests.support.workers`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    run_cli,
    running_process,
)
from tests.support.tls import make_pki
from tests.support.workers import WorkerConnection, basic, one_per_worker, open_connection, until

pytestmark = pytest.mark.e2e

BUDGET = 0.050  # seconds from the change's answer to every other worker honouring it
TOKEN = "/oauth2/token"
INTROSPECT = "/oauth2/introspect"
REVOKE = "/oauth2/revoke"
GRANT = {"grant_type": "client_credentials"}


@dataclass
class Setup:
    """A running server and its clients: `issuer` gets tokens, `rs` introspects them."""

    server: ServerProcess
    issuer: tuple[str, str]
    rs: tuple[str, str]


@contextlib.contextmanager
def serving(database_url: str, tmp_path: Path, *extra: str) -> Iterator[Setup]:
    """Two clients, then `tokengate serve --workers 2` (or `extra`) on a free port."""
    issuer = create_client(database_url, "app", "read")
    rs = create_client(database_url, "rs", "read", introspect=True)
    port = free_port()
    server = ServerProcess(
        database_url, port, f"http://127.0.0.1:{port}", tmp_path / "serve.log",
        extra_args=extra or ("--workers", "2"),
    )  # fmt: skip
    server.start()
    try:
        yield Setup(server, issuer, rs)
    finally:
        server.stop()


def token_via(worker: WorkerConnection, client: tuple[str, str]) -> str:
    status, body = worker.form(TOKEN, GRANT, client)
    assert status == 200, body
    return str(body["access_token"])


def active(worker: WorkerConnection, rs: tuple[str, str], token: str) -> bool:
    status, body = worker.form(INTROSPECT, {"token": token}, rs)
    assert status == 200, body
    return bool(body["active"])


def status_of(worker: WorkerConnection, rs: tuple[str, str], token: str) -> int:
    return worker.form(INTROSPECT, {"token": token}, rs)[0]


def admin(worker: WorkerConnection, admin_token: str, path: str, body: object) -> object:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    status, answer = worker.request("POST", "/admin/api" + path, json.dumps(body).encode(), headers)
    assert status == 200, answer
    return answer


def test_revocation_through_one_worker_is_refused_by_the_other_within_50ms(
    database_url: str, tmp_path: Path
) -> None:
    """A token cached active by both workers is inactive on the other one ≤ 50 ms after the
    revocation's 200, whichever worker revoked it."""
    with serving(database_url, tmp_path) as s, one_per_worker(s.server.port, 2) as (w0, w1):
        for here, there in ((w0, w1), (w1, w0)):
            token = token_via(here, s.issuer)
            assert active(here, s.rs, token)
            assert active(there, s.rs, token)  # both workers cache it
            assert here.form(REVOKE, {"token": token}, s.issuer)[0] == 200
            assert until(lambda: not active(there, s.rs, token), 1.0) <= BUDGET  # noqa: B023 - called within this iteration
            assert not active(here, s.rs, token)


def test_client_rotation_and_disable_are_honoured_by_every_worker_within_50ms(
    database_url: str, tmp_path: Path
) -> None:
    """Through worker 0's management API: the introspecting client's rotated-out secret (no
    grace) is refused by worker 1 ≤ 50 ms later; disabling the token's client makes its
    token inactive there, and disabling the introspecting client refuses it there."""
    with serving(database_url, tmp_path) as s, one_per_worker(s.server.port, 2) as (w0, w1):
        made = run_cli(
            "admin-tokens", "create", "--admin", "--database", s.server.database_url, "--json"
        )
        admin_token = json.loads(made)["admin_token"]
        token = token_via(w0, s.issuer)
        assert active(w0, s.rs, token)
        assert active(w1, s.rs, token)  # both workers cache the clients

        rs_id = s.rs[0]
        rotated = admin(w0, admin_token, f"/clients/{rs_id}/rotate-secret", {"grace": 0})
        new_rs = (rs_id, str(rotated["client_secret"]))  # type: ignore[index]
        assert until(lambda: status_of(w1, s.rs, token) == 401, 1.0) <= BUDGET
        assert active(w1, new_rs, token)
        assert active(w0, new_rs, token)

        admin(w0, admin_token, f"/clients/{s.issuer[0]}/disable", {})
        assert until(lambda: not active(w1, new_rs, token), 1.0) <= BUDGET
        assert w1.form(TOKEN, GRANT, s.issuer)[0] == 401

        admin(w0, admin_token, f"/clients/{rs_id}/disable", {})
        assert until(lambda: status_of(w1, new_rs, token) == 401, 1.0) <= BUDGET


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tokengate.db'}"


def test_graceful_stop_finishes_in_flight_requests(sqlite_url: str, tmp_path: Path) -> None:
    """SIGTERM to the parent: a request half-sent to each worker still gets its answer, then
    every process exits (status 0) and the port is closed."""
    with serving(sqlite_url, tmp_path) as s, one_per_worker(s.server.port, 2) as workers:
        token = token_via(workers[0], s.issuer)
        body = f"token={token}".encode()
        for worker in workers:
            worker.conn.putrequest("POST", INTROSPECT)
            for name, value in {
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": str(len(body)),
                **basic(*s.rs),
            }.items():
                worker.conn.putheader(name, value)
            worker.conn.endheaders(body[:10])
        process = s.server.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        for worker in workers:
            worker.conn.send(body[10:])
            response = worker.conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["active"] is True
        assert process.wait(10) == 0
        for worker in workers:
            assert not _alive(worker.pid)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.server.port), timeout=1).close()


def test_every_worker_terminates_tls(sqlite_url: str, tmp_path: Path) -> None:
    """With `--tls-cert/--tls-key` each worker rebuilds the TLS context and answers HTTPS; the
    default issuer is https:// with the port the parent bound."""
    pki = make_pki(tmp_path / "pki")
    trust = ssl.create_default_context(cafile=str(pki.ca))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    args = [*TOKENGATE, "serve", "--port", str(port), "--database", sqlite_url, "--workers", "2",
            "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]  # fmt: skip
    with running_process(args, url + "/healthz", tmp_path / "serve.log", verify=trust):
        seen: set[int] = set()
        deadline = time.monotonic() + 10
        while seen != {0, 1} and time.monotonic() < deadline:
            with httpx.Client(verify=trust) as http:  # a new connection each time
                seen.add(http.get(url + "/healthz").json()["worker"])
        assert seen == {0, 1}
        metadata = httpx.get(url + "/.well-known/oauth-authorization-server", verify=trust)
        assert metadata.json()["issuer"] == url


def test_a_worker_that_dies_is_replaced_under_its_index(sqlite_url: str, tmp_path: Path) -> None:
    """SIGKILL to worker 1: the parent starts another worker 1 (new pid) and keeps serving."""
    with serving(sqlite_url, tmp_path) as s:
        with one_per_worker(s.server.port, 2) as (_, w1):
            killed = w1.pid
        os.kill(killed, signal.SIGKILL)
        until(lambda: _worker_pid(s.server.port, 1) not in (None, killed), 10.0, step=0.05)
        assert s.server.process is not None
        assert s.server.process.poll() is None
        assert "died (exit -9): replaced" in s.server.logs()


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    """Workers that fail before serving (here: an unopenable database) stop the parent with
    exit status 3 instead of being restarted for ever."""
    database = f"sqlite:///{tmp_path / 'missing' / 'tokengate.db'}"
    args = ["serve", "--port", "0", "--database", database, "--workers", "2"]
    proc = subprocess.run(
        [*TOKENGATE, *args], capture_output=True, text=True, timeout=20, check=False
    )
    assert proc.returncode == 3
    assert "failed to start (exit 3): stopping" in proc.stderr


def test_a_port_another_server_listens_on_is_refused(tmp_path: Path) -> None:
    """Even a listener in its own `SO_REUSEPORT` group (another `serve --workers`) is not joined:
    the command exits 1 before any worker starts."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = str(other.getsockname()[1])
        database = f"sqlite:///{tmp_path / 'tokengate.db'}"
        args = ["serve", "--port", port, "--database", database, "--workers", "2"]
        proc = subprocess.run(
            [*TOKENGATE, *args], capture_output=True, text=True, timeout=20, check=False
        )
    assert proc.returncode == 1
    assert "Address already in use" in proc.stderr
    assert "started" not in proc.stderr


def test_workers_stop_when_the_parent_is_killed(sqlite_url: str, tmp_path: Path) -> None:
    """SIGKILL to the parent: each worker sees its pipe close and stops itself."""
    with serving(sqlite_url, tmp_path) as s:
        with one_per_worker(s.server.port, 2) as workers:
            pids = [w.pid for w in workers]
        s.server.stop(kill=True)
        until(lambda: not any(_alive(pid) for pid in pids), 10.0, step=0.05)


def test_workers_auto_is_one_per_usable_core(sqlite_url: str, tmp_path: Path) -> None:
    """`--workers auto` starts as many workers as this process may use cores, each serving."""
    cores = len(os.sched_getaffinity(0))
    with serving(sqlite_url, tmp_path, "--workers", "auto") as s:
        if cores == 1:  # one process, as without --workers: /healthz names no worker
            assert "workers" not in s.server.logs()
            return
        with one_per_worker(s.server.port, cores):
            assert f"started {cores} workers" in s.server.logs()


def _worker_pid(port: int, index: int) -> int | None:
    """The pid answering as worker `index` on one of a few new connections, if any."""
    for _ in range(8):
        with contextlib.suppress(OSError):
            connection = open_connection(port)
            connection.conn.close()
            if connection.worker == index:
                return connection.pid
    return None


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
