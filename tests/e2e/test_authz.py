"""`tokengate authz` as a real process against a real `tokengate serve`: the answers a proxy
relays, a cache miss inside Envoy's 200 ms budget, instant revocation, and an issuer outage."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dpop import bare_challenges
from tests.support.servers import (
    ServerProcess,
    create_client,
    free_port,
    running_process,
    running_server,
)

pytestmark = pytest.mark.e2e
TOKEN_TTL = 600


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, tuple[str, str]]]:
    """A `tokengate serve` and a `tokengate authz` caching as long as a token lives."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    app_client = create_client(database, "svc", "read", ttl=TOKEN_TTL)
    authz_id, authz_secret = create_client(database, "authz", "", introspect=True)
    with running_server(database, log_dir=tmp_path) as server:
        port = free_port()
        secret_file = tmp_path / "secret"
        secret_file.write_text(authz_secret)
        args = [sys.executable, "-m", "tokengate", "authz", "--port", str(port),
                "--issuer", server.issuer, "--client-id", authz_id,
                "--client-secret-file", str(secret_file), "--protect", "/auth-api/**",
                "--require-scope", "POST /auth-api/items=write",
                "--cache-max-ttl", str(TOKEN_TTL)]  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        with running_process(args, url + "/healthz", tmp_path / "authz.log"):
            yield server, url, app_client


def _token(server: ServerProcess, client: tuple[str, str]) -> str:
    form = {"grant_type": "client_credentials"}
    return str(
        httpx.post(server.base_url + "/oauth2/token", data=form, auth=client).json()["access_token"]
    )


def _decide(
    url: str, token: str | None, uri: str = "/auth-api/x", method: str = "GET"
) -> httpx.Response:
    headers = {"X-Original-Method": method, "X-Original-URI": uri}
    if token is not None:
        headers["X-Access-Token"] = token
    return httpx.get(url + "/decide", headers=headers)


def test_decisions_a_proxy_relays(stack: tuple[ServerProcess, str, tuple[str, str]]) -> None:
    """200 with identity, 401 with the challenge, 403 with the scope, 400 for ambiguity."""
    server, url, client = stack
    token = _token(server, client)
    started = time.monotonic()
    allowed = _decide(url, token)
    miss = time.monotonic() - started
    assert allowed.status_code == 200
    assert allowed.headers["x-auth-client-id"] == client[0]
    assert miss < 0.2, f"a cache miss took {miss:.3f} s (Envoy's default ext_authz timeout: 200 ms)"
    assert _decide(url, None).headers["www-authenticate"] == bare_challenges("tokengate")
    assert _decide(url, "garbage").status_code == 401
    assert (
        'scope="write"'
        in _decide(url, token, "/auth-api/items", "POST").headers["www-authenticate"]
    )
    assert _decide(url, token, "/public/../auth-api/x").status_code == 400
    assert "x-auth-subject" not in _decide(url, None, "/public/x").headers


def test_revoked_token_is_refused_within_a_second(
    stack: tuple[ServerProcess, str, tuple[str, str]],
) -> None:
    """Cached for its whole life, yet refused < 1 s after revocation (the event evicts it)."""
    server, url, client = stack
    token = _token(server, client)
    assert _decide(url, token).status_code == 200
    httpx.post(server.base_url + "/oauth2/revoke", data={"token": token}, auth=client)
    started = time.monotonic()
    while _decide(url, token).status_code != 401:
        assert time.monotonic() - started < 1.0
        time.sleep(0.01)


def test_issuer_down_cached_passes_uncached_is_503(
    stack: tuple[ServerProcess, str, tuple[str, str]],
) -> None:
    """The authorization server stopped: a cached token still 200, an uncached one 503."""
    server, url, client = stack
    cached, uncached = _token(server, client), _token(server, client)
    assert _decide(url, cached).status_code == 200
    server.stop()
    assert _decide(url, cached).status_code == 200
    refused = _decide(url, uncached)
    assert refused.status_code == 503
    assert "retry-after" in refused.headers
