"""DPoP-bound tokens (RFC 9449 §7) at real resource servers: a real `tokengate serve` binds the
token, and the example resource server and `tokengate authz` verify it with its proof on
every request (cache hit or not), refusing a replay, a proof for another URL, and the token
without its proof. oauth4webapi's DPoP (npm, pinned) is the client in one test."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.test_resource_server import resource_server
from tests.support.dpop import ALGS, DpopKey
from tests.support.node import run_node
from tests.support.servers import (
    ServerProcess,
    create_client,
    free_port,
    running_process,
    running_server,
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Stack:
    """The authorization server, the example RS, the decision service and an app client."""

    server: ServerProcess
    rs: str
    authz: str
    app: tuple[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`tokengate serve` (SQLite), the example resource server and `tokengate authz`."""
    logs = tmp_path_factory.mktemp("dpop-rs")
    database = f"sqlite:///{logs / 'tokengate.db'}"
    app = create_client(database, "app", "read")
    rs_client = create_client(database, "rs", "", introspect=True)
    authz_id, authz_secret = create_client(database, "authz", "", introspect=True)
    (logs / "secret").write_text(authz_secret)
    with running_server(database, log_dir=logs) as server:
        port = free_port()
        args = [sys.executable, "-m", "tokengate", "authz", "--port", str(port),
                "--issuer", server.issuer, "--client-id", authz_id,
                "--client-secret-file", str(logs / "secret"),
                "--protect", "/auth-api/**"]  # fmt: skip
        authz = f"http://127.0.0.1:{port}"
        with (
            resource_server(rs_client, logs, issuer=server.issuer) as (rs, _),
            running_process(args, authz + "/healthz", logs / "authz.log"),
        ):
            yield Stack(server, rs, authz, app)


def _bound_token(stack: Stack, key: DpopKey) -> str:
    proof = key.proof(stack.server.issuer + "/oauth2/token")
    answer = httpx.post(
        stack.server.base_url + "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"DPoP": proof},
        auth=stack.app,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return str(answer.json()["access_token"])


def _with_proof(key: DpopKey, token: str, method: str, url: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": key.proof(url, method, access_token=token)}


def test_the_example_resource_server_verifies_every_proof(stack: Stack) -> None:
    """200 with a fresh proof per request (the second a cache hit); a replayed proof, one for
    another URL, and the token without a proof or as Bearer are 401 with the DPoP challenge."""
    key = DpopKey()
    token = _bound_token(stack, key)
    hello = stack.rs + "/auth-api/hello"
    for _ in range(2):
        answer = httpx.get(hello, headers=_with_proof(key, token, "GET", hello))
        assert answer.status_code == 200, answer.text
    me = httpx.get(
        stack.rs + "/auth-api/me", headers=_with_proof(key, token, "GET", stack.rs + "/auth-api/me")
    )
    assert me.json()["cnf"] == {"jkt": key.jkt}
    spent = _with_proof(key, token, "GET", hello)
    assert httpx.get(hello, headers=spent).status_code == 200
    refusals = {
        "replayed": httpx.get(hello, headers=spent),
        "other-url": httpx.get(
            stack.rs + "/auth-api/me", headers=_with_proof(key, token, "GET", hello)
        ),
        "no-proof": httpx.get(hello, headers={"Authorization": f"DPoP {token}"}),
        "as-bearer": httpx.get(hello, headers={"Authorization": f"Bearer {token}"}),
        "custom-header": httpx.get(hello, headers={"X-Access-Token": token}),
        "other-key": httpx.get(hello, headers=_with_proof(DpopKey(), token, "GET", hello)),
    }
    for name, refused in refusals.items():
        assert refused.status_code == 401, name
        challenge = refused.headers["www-authenticate"]
        assert f'algs="{ALGS}"' in challenge, name
        assert refused.json()["error"] in ("invalid_dpop_proof", "invalid_token"), name


def test_the_decision_service_verifies_the_original_request(stack: Stack) -> None:
    """nginx's description of the original request (target, scheme, Host): 200 with identity;
    the same proof again, or a proof for another host, is refused."""
    key = DpopKey()
    token = _bound_token(stack, key)
    original = {
        "X-Original-Method": "GET",
        "X-Original-URI": "/auth-api/hello?x=1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example",
    }
    proof = _with_proof(key, token, "GET", "https://api.example/auth-api/hello")
    allowed = httpx.get(stack.authz + "/decide", headers={**original, **proof})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["x-auth-client-id"] == stack.app[0]
    again = httpx.get(stack.authz + "/decide", headers={**original, **proof})
    assert again.status_code == 401
    assert 'error="invalid_dpop_proof"' in again.headers["www-authenticate"]
    elsewhere = _with_proof(key, token, "GET", "https://other.example/auth-api/hello")
    assert httpx.get(stack.authz + "/decide", headers={**original, **elsewhere}).status_code == 401
    bearer = {**original, "Authorization": f"Bearer {token}"}
    assert httpx.get(stack.authz + "/decide", headers=bearer).status_code == 401


def test_oauth4webapi_calls_the_protected_resource(stack: Stack) -> None:
    """oauth4webapi's `DPoP()` + `protectedResourceRequest` gets 200s; the proofs it sent,
    replayed or aimed at another URL, and its token without a proof, are refused."""
    proc = run_node("dpop_resource.mjs", stack.server.issuer, *stack.app, stack.rs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout)
    assert got["token_type"].lower() == "dpop"
    assert got["ok"] == [200, 200]
    assert got["authorization_scheme"] == "DPoP"
    assert got["cnf"] == {"jkt": got["jkt"]}
    for name in ("replayed", "other_url", "without_proof", "as_bearer"):
        assert got[name]["status"] == 401, name
        assert f'algs="{ALGS}"' in got[name]["challenge"], name
    assert 'error="invalid_dpop_proof"' in got["replayed"]["challenge"]
    assert 'error="invalid_dpop_proof"' in got["other_url"]["challenge"]
