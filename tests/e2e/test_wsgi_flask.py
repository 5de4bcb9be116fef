"""A Flask app behind `TokenGateWSGIMiddleware` on a threaded WSGI server, against a real
authorization server: the same runtime as ASGI, so instant revocation and single-flight hold."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.servers import (
    ServerProcess,
    create_client,
    free_port,
    running_process,
    running_server,
)

pytestmark = pytest.mark.e2e
TOKEN_TTL = 600
_ACTIVE = re.compile(r'^tokengate_introspection_requests_total\{result="active"\} (\S+)$', re.M)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, tuple[str, str]]]:
    """A `tokengate serve`, and the Flask app validating against it (max_ttl = token life)."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    app_client = create_client(database, "svc", "read", ttl=TOKEN_TTL)
    rs_id, rs_secret = create_client(database, "flask-rs", "", introspect=True)
    with running_server(database, log_dir=tmp_path) as server:
        port = free_port()
        env = {
            "TG_ISSUER": server.issuer,
            "TG_CLIENT_ID": rs_id,
            "TG_CLIENT_SECRET": rs_secret,
            "TG_MAX_TTL": str(TOKEN_TTL),
            "TG_PORT": str(port),
        }
        url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "tests.e2e.apps.flask_app"]
        with running_process(args, url + "/public/ping", tmp_path / "flask.log", env):
            yield server, url, app_client


def _token(server: ServerProcess, client: tuple[str, str]) -> str:
    form = {"grant_type": "client_credentials"}
    answer = httpx.post(server.base_url + "/oauth2/token", data=form, auth=client)
    return str(answer.json()["access_token"])


def _introspections(server: ServerProcess) -> float:
    found = _ACTIVE.search(httpx.get(server.base_url + "/metrics").text)
    return float(found.group(1)) if found else 0.0


def _hello(url: str, token: str) -> int:
    return httpx.get(url + "/auth-api/hello", headers={"X-Access-Token": token}).status_code


def test_flask_app_refuses_a_revoked_token_within_a_second(
    stack: tuple[ServerProcess, str, tuple[str, str]],
) -> None:
    """A cached token (max_ttl as long as its life) is refused < 1 s after its revocation."""
    server, app_url, client = stack
    token = _token(server, client)
    assert _hello(app_url, token) == 200
    assert _hello(app_url, "garbage-token") == 401
    revoked = httpx.post(server.base_url + "/oauth2/revoke", data={"token": token}, auth=client)
    assert revoked.status_code == 200
    started = time.monotonic()
    while _hello(app_url, token) != 401:
        assert time.monotonic() - started < 1.0, "a revoked token was still accepted after 1 s"
        time.sleep(0.01)


def test_flask_app_threads_share_one_introspection(
    stack: tuple[ServerProcess, str, tuple[str, str]],
) -> None:
    """100 threads presenting one fresh token at once cost exactly one introspection."""
    server, app_url, client = stack
    token = _token(server, client)
    before = _introspections(server)
    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(lambda _: _hello(app_url, token), range(100)))
    assert statuses == [200] * 100
    assert _introspections(server) - before == 1
