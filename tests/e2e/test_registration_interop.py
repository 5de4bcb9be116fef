"""RFC 7591 registration with a client nobody here wrote: oauth4webapi (panva), from npm, run
by Node.js. Authlib has no RFC 7591 client (only the server side, `authlib.oauth2.rfc7591`)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.node import run_node
from tests.support.servers import run_cli, running_server

pytestmark = pytest.mark.e2e


def test_oauth4webapi_registers_and_gets_a_token(database_url: str, tmp_path: Path) -> None:
    """Discovery, dynamic registration with the CLI's initial access token, then the client
    credentials grant; the RFC 7592 URI and token it was given then read the client."""
    made = run_cli("admin-tokens", "create", "--ttl", "300", "--database", database_url, "--json")
    initial = json.loads(made)["initial_access_token"]
    with running_server(database_url, log_dir=tmp_path) as server:
        proc = run_node("register.mjs", server.issuer, initial)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout)
        assert result["token_type"].lower() == "bearer"
        assert (result["expires_in"], result["scope"]) == (120, "read")
        read = httpx.get(
            result["registration_client_uri"],
            headers={"Authorization": f"Bearer {result['registration_access_token']}"},
        )
        assert (read.status_code, read.json()["client_name"]) == (200, "oauth4webapi")


def test_oauth4webapi_without_an_initial_access_token_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """Registration is never open: the library sees a 401 Bearer challenge."""
    with running_server(database_url, log_dir=tmp_path) as server:
        proc = run_node("register.mjs", server.issuer)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["status"] == 401
    assert run_cli("clients", "list", "--database", database_url) == ""
