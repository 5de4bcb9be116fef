"""The authorization server as a real process over loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest

from tests.support.servers import TOKENGATE, create_client, free_port, run_cli, running_server

pytestmark = pytest.mark.e2e


def _token(base: str, cid: str, secret: str, **form: str) -> httpx.Response:
    return httpx.post(
        base + "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(cid, secret),
    )


def _introspect(base: str, rs: tuple[str, str], token: str) -> dict[str, object]:
    response = httpx.post(base + "/oauth2/introspect", data={"token": token}, auth=rs)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_full_cycle_and_restart_persistence(database_url: str, tmp_path: Path) -> None:
    """Token → introspect → revoke → introspect; a restart keeps active and revoked states."""
    cid, secret = create_client(database_url, "svc", "read write", ttl=600)
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        base = server.base_url
        kept = _token(base, cid, secret, scope="read").json()["access_token"]
        doomed = _token(base, cid, secret).json()["access_token"]
        claims = _introspect(base, rs, kept)
        assert claims["active"] is True
        assert claims["scope"] == "read"
        assert claims["iss"] == server.issuer
        assert (
            httpx.post(
                base + "/oauth2/revoke", data={"token": doomed}, auth=(cid, secret)
            ).status_code
            == 200
        )
        assert _introspect(base, rs, doomed) == {"active": False}
        server.restart()
        assert _introspect(base, rs, kept)["active"] is True
        assert _introspect(base, rs, doomed) == {"active": False}
        logs = server.logs()
    assert kept not in logs
    assert secret not in logs


def test_errors_over_the_wire(database_url: str, tmp_path: Path) -> None:
    """Spec errors, 405, 413, 415 from the real server; never a 500."""
    cid, secret = create_client(database_url, "svc", "read")
    with running_server(database_url, log_dir=tmp_path) as server:
        base = server.base_url
        cases = [
            (_token(base, cid, secret, scope="write"), 400, "invalid_scope"),
            (_token(base, cid, "wrong"), 401, "invalid_client"),
            (
                httpx.post(
                    base + "/oauth2/token", data={"grant_type": "password"}, auth=(cid, secret)
                ),
                400,
                "unsupported_grant_type",
            ),
            (
                httpx.post(
                    base + "/oauth2/token",
                    content=b"grant_type=client_credentials&scope=a&scope=b",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    auth=(cid, secret),
                ),
                400,
                "invalid_request",
            ),
            (
                httpx.post(
                    base + "/oauth2/token",
                    content=b"x" * 100_000,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ),
                413,
                "invalid_request",
            ),
            (httpx.post(base + "/oauth2/token", json={}), 415, "invalid_request"),
            (httpx.get(base + "/oauth2/introspect"), 405, "invalid_request"),
            (httpx.post(base + "/oauth2/introspect", data={"token": "x"}), 401, "invalid_client"),
        ]
        for response, status, error in cases:
            assert response.status_code == status, response.text
            assert response.json()["error"] == error
        unauthorized = _token(base, cid, "wrong")
        assert unauthorized.headers["www-authenticate"].startswith("Basic realm=")
        metadata = httpx.get(base + "/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == server.issuer
        assert metadata["grant_types_supported"] == ["client_credentials"]


def test_authlib_client_interop(database_url: str, tmp_path: Path) -> None:
    """A token fetched by Authlib's OAuth2Client (client_credentials) introspects active."""
    import authlib.deprecate  # noqa: F401, PLC0415 - installs its own "always" filter on import

    with warnings.catch_warnings():
        # Authlib 1.9 steers users to its httpx2 integration; the httpx one is what people run.
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client  # noqa: PLC0415
    cid, secret = create_client(database_url, "svc", "read write")
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        for method in ("client_secret_basic", "client_secret_post"):
            with OAuth2Client(
                cid, secret, scope="read", token_endpoint_auth_method=method
            ) as oauth:
                token = oauth.fetch_token(
                    server.base_url + "/oauth2/token", grant_type="client_credentials"
                )
            assert token["token_type"] == "Bearer"
            assert _introspect(server.base_url, rs, token["access_token"])["active"] is True


def test_cli_client_lifecycle(database_url: str, tmp_path: Path) -> None:
    """clients list/show/rotate-secret/disable/delete and tokens revoke act on the live server."""
    cid, secret = create_client(database_url, "svc", "read")
    rs = create_client(database_url, "rs", "", introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        base = server.base_url
        listed = json.loads(run_cli("clients", "list", "--database", database_url, "--json"))
        assert {c["client_id"] for c in listed} == {cid, rs[0]}
        shown = run_cli("clients", "show", cid, "--database", database_url)
        assert json.loads(shown)["name"] == "svc"
        assert secret not in shown
        first = _token(base, cid, secret).json()["access_token"]
        new_secret = json.loads(
            run_cli("clients", "rotate-secret", cid, "--database", database_url, "--json")
        )["client_secret"]
        assert _token(base, cid, secret).status_code == 401
        assert _token(base, cid, new_secret).status_code == 200
        assert _introspect(base, rs, first)["active"] is True  # documented: rotation keeps tokens
        revoke = subprocess.run(
            [*TOKENGATE, "tokens", "revoke", "-", "--database", database_url],
            input=first,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "revoked" in revoke.stdout
        assert _introspect(base, rs, first) == {"active": False}
        second = _token(base, cid, new_secret).json()["access_token"]
        run_cli("clients", "disable", cid, "--database", database_url)
        assert _introspect(base, rs, second) == {"active": False}
        assert _token(base, cid, new_secret).status_code == 401
        run_cli("clients", "delete", cid, "--database", database_url)
        assert (
            "no client"
            in subprocess.run(
                [*TOKENGATE, "clients", "show", cid, "--database", database_url],
                capture_output=True,
                text=True,
                check=False,
            ).stderr
        )


def test_purge_expired_cli(database_url: str, tmp_path: Path) -> None:
    """tokens purge-expired removes expired tokens; live ones stay."""
    short = create_client(database_url, "short", "read", ttl=1)
    with running_server(database_url, log_dir=tmp_path) as server:
        _token(server.base_url, *short)
    time.sleep(1.1)
    out = run_cli("tokens", "purge-expired", "--database", database_url)
    assert out.strip() == "purged 1 expired tokens"


def test_two_servers_start_at_once_on_one_database(database_url: str, tmp_path: Path) -> None:
    """Concurrent first starts create the schema once and both serve."""
    ports = [free_port(), free_port()]

    def start(port: int) -> int:
        with running_server(database_url, port=port, log_dir=tmp_path) as server:
            return httpx.get(server.base_url + "/healthz").status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert list(pool.map(start, ports)) == [200, 200]
    cid, secret = create_client(database_url, "svc", "read")
    rs = create_client(database_url, "rs", "", introspect=True)
    with (
        running_server(database_url, log_dir=tmp_path) as a,
        running_server(database_url, log_dir=tmp_path) as b,
    ):
        token = _token(a.base_url, cid, secret).json()["access_token"]
        assert _introspect(b.base_url, rs, token)["active"] is True
