"""A hung authorization server (SIGSTOP: connections still accepted by the kernel, nothing
answered, no FIN) with default settings everywhere: a token revoked in the database meanwhile is
refused within heartbeat timeout + outage TTL (5 s + 5 s) by the example resource server and by
`tokengate authz`, and a token nobody has cached gets a 503 within the introspection timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    running_process,
    running_server,
)

pytestmark = pytest.mark.e2e

TOKEN_TTL = 3600
REVOCATION_BOUND = 10.0  # default heartbeat timeout (5 s) + default outage cache TTL (5 s)
INTROSPECTION_TIMEOUT = 3.0  # the CLI default
TOKEN_HEADER = "X-Access-Token"


@contextlib.contextmanager
def validating_services(
    issuer: str, rs: tuple[str, str], tmp_path: Path
) -> Iterator[dict[str, Callable[[str], int]]]:
    """The example resource server and `tokengate authz`, defaults but a cache as long as a
    token lives; yields, per service, a call returning the status a token gets there."""
    secret_file = tmp_path / "rs-secret"
    secret_file.write_text(rs[1])
    common = ["--issuer", issuer, "--client-id", rs[0], "--client-secret-file", str(secret_file),
              "--cache-max-ttl", str(TOKEN_TTL)]  # fmt: skip
    rs_port, authz_port = free_port(), free_port()
    rs_url, authz_url = f"http://127.0.0.1:{rs_port}", f"http://127.0.0.1:{authz_port}"
    rs_args = [*TOKENGATE, "example-resource-server", "--port", str(rs_port), *common]
    authz_args = [*TOKENGATE, "authz", "--port", str(authz_port), *common]

    def at_rs(token: str) -> int:
        return httpx.get(
            rs_url + "/auth-api/hello", headers={TOKEN_HEADER: token}, timeout=30
        ).status_code

    def at_authz(token: str) -> int:
        headers = {"X-Original-Method": "GET", "X-Original-URI": "/x", TOKEN_HEADER: token}
        return httpx.get(authz_url + "/decide", headers=headers, timeout=30).status_code

    with (
        running_process(rs_args, rs_url + "/public/ping", tmp_path / "rs.log"),
        running_process(authz_args, authz_url + "/healthz", tmp_path / "authz.log"),
    ):
        wait_until(lambda: live(rs_url + "/public/status"), 20, "example resource server live")
        yield {"example-resource-server": at_rs, "authz": at_authz}


def live(status_url: str) -> bool:
    document = httpx.get(status_url, timeout=5).json()
    return bool(document["revocation_events"]["state"] == "live")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` every 50 ms; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def issue(server: ServerProcess, client: tuple[str, str]) -> str:
    form = {"grant_type": "client_credentials", "scope": "read"}
    response = httpx.post(server.base_url + "/oauth2/token", data=form, auth=client)
    return str(response.json()["access_token"])


@contextlib.contextmanager
def hung(server: ServerProcess) -> Iterator[None]:
    """SIGSTOP the server for the block; SIGCONT whatever happens."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def seconds_until_refused(
    call: Callable[[str], int], token: str, since: float
) -> tuple[float, float, int]:
    """Poll `call(token)` until it is not 200: when the last 200 came and when the refusal came
    (seconds after `since`), and the refusal's status."""
    accepted = 0.0
    while (status := call(token)) == 200:
        accepted = time.monotonic() - since
        if accepted > 60:
            raise AssertionError("still accepted after 60 s")
        time.sleep(0.05)
    return accepted, time.monotonic() - since, status


def timed(call: Callable[[str], int], token: str) -> tuple[int, float]:
    """`call(token)`'s status and the seconds it took."""
    started = time.monotonic()
    status = call(token)
    return status, time.monotonic() - started


def test_revocation_is_bounded_when_the_issuer_hangs(tmp_path: Path) -> None:
    """SIGSTOPped issuer, token revoked by the CLI: refused within 10 s; an uncached token 503."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    app = create_client(database, "app", "read", ttl=TOKEN_TTL)
    rs = create_client(database, "rs", "", introspect=True)
    revoke = [*TOKENGATE, "tokens", "revoke", "-", "--database", database]
    with running_server(database, log_dir=tmp_path) as server:
        cached, uncached = issue(server, app), issue(server, app)
        with validating_services(server.issuer, rs, tmp_path) as services:
            assert [call(cached) for call in services.values()] == [200, 200]
            with hung(server), ThreadPoolExecutor(len(services)) as pool:
                stopped = time.monotonic()
                subprocess.run(
                    revoke, input=cached, text=True, capture_output=True, check=True, timeout=60
                )
                polls = {name: pool.submit(seconds_until_refused, call, cached, stopped)
                         for name, call in services.items()}  # fmt: skip
                timings = {name: poll.result() for name, poll in polls.items()}
                for name, (accepted, refused, status) in timings.items():
                    print(f"{name}: issuer stopped, token revoked; last 200 after {accepted:.2f} s,"
                          f" refused ({status}) after {refused:.2f} s")  # fmt: skip
                    assert status == 503, name  # nobody to ask: not a 401
                    assert refused <= REVOCATION_BOUND, name
                answers = {
                    name: pool.submit(timed, call, uncached) for name, call in services.items()
                }
                for name, answer in answers.items():
                    status, elapsed = answer.result()
                    print(f"{name}: an uncached token answered {status} in {elapsed:.2f} s")
                    assert status == 503, name
                    assert elapsed <= INTROSPECTION_TIMEOUT + 1.5, name
            for name, call in services.items():
                resumed = wait_until(lambda call=call: call(cached) == 401, 30, f"{name}: 401")
                print(f"{name}: 401 {resumed:.2f} s after the issuer resumed")
                assert call(uncached) == 200, name
    logs = (tmp_path / "rs.log").read_text(errors="replace")
    assert "revocation events lost (timed out)" in logs
    for secret in (cached, uncached, app[1], rs[1]):
        assert secret not in logs
