"""DPoP-bound tokens (RFC 9449) through real `tokengate serve` processes, on SQLite and
PostgreSQL: a proof replayed at another replica is refused, nonces issued by one replica are
accepted by the other, a `--dpop-bound` client needs a proof, and oauth4webapi's DPoP obtains
a bound token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.dpop import DpopKey
from tests.support.node import run_node
from tests.support.servers import create_client, run_cli, running_server

pytestmark = pytest.mark.e2e
ISSUER = "http://tokengate.test"  # one issuer for both replicas, as behind a balancer
TOKEN_URL = ISSUER + "/oauth2/token"


def token_request(base_url: str, client: tuple[str, str], proof: str | None) -> httpx.Response:
    """A client credentials request with `proof` as the DPoP header (none when None)."""
    headers = {} if proof is None else {"DPoP": proof}
    return httpx.post(
        base_url + "/oauth2/token", data={"grant_type": "client_credentials"},
        headers=headers, auth=client, timeout=5.0,
    )  # fmt: skip


def introspect(base_url: str, rs: tuple[str, str], token: str) -> dict[str, object]:
    """The RFC 7662 answer for `token`."""
    response = httpx.post(base_url + "/oauth2/introspect", data={"token": token}, auth=rs)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_replay_refused_by_another_replica(database_url: str, tmp_path: Path) -> None:
    """Two replicas on one database: a proof spent at one is `invalid_dpop_proof` at the other;
    the token it got is bound (`cnf.jkt`) whichever replica introspects it."""
    client = create_client(database_url, "svc", "read")
    rs = create_client(database_url, "rs", "read", introspect=True)
    key = DpopKey()
    with (
        running_server(database_url, ISSUER, log_dir=tmp_path) as one,
        running_server(database_url, ISSUER, log_dir=tmp_path) as two,
    ):
        proof = key.proof(TOKEN_URL)
        first = token_request(one.base_url, client, proof)
        assert first.status_code == 200, first.text
        assert first.json()["token_type"] == "DPoP"
        replayed = token_request(two.base_url, client, proof)
        assert replayed.status_code == 400
        assert replayed.json()["error"] == "invalid_dpop_proof"
        assert "already used" in replayed.json()["error_description"]
        seen = introspect(two.base_url, rs, first.json()["access_token"])
        assert (seen["token_type"], seen["cnf"]) == ("DPoP", {"jkt": key.jkt})


def test_nonces_are_shared_by_replicas(database_url: str, tmp_path: Path) -> None:
    """With `--dpop-nonce`, a proof without a nonce is `use_dpop_nonce`; the nonce one replica
    hands out is accepted by the other (the key is in the database)."""
    client = create_client(database_url, "svc", "read")
    key, nonce_on = DpopKey(), ["--dpop-nonce"]
    with (
        running_server(database_url, ISSUER, log_dir=tmp_path, extra_args=nonce_on) as one,
        running_server(database_url, ISSUER, log_dir=tmp_path, extra_args=nonce_on) as two,
    ):
        asked = token_request(one.base_url, client, key.proof(TOKEN_URL))
        assert (asked.status_code, asked.json()["error"]) == (400, "use_dpop_nonce")
        nonce = asked.headers["DPoP-Nonce"]
        served = token_request(two.base_url, client, key.proof(TOKEN_URL, nonce=nonce))
        assert served.status_code == 200, served.text
        assert served.headers["DPoP-Nonce"]


def test_dpop_bound_client_needs_a_proof(tmp_path: Path) -> None:
    """`clients create --dpop-bound`: without a proof, `invalid_dpop_proof`; with one, a token."""
    database_url = f"sqlite:///{tmp_path / 'tokengate.db'}"
    made = json.loads(run_cli("clients", "create", "bound", "--scope", "read", "--dpop-bound",
                              "--database", database_url, "--json"))  # fmt: skip
    client = (made["client_id"], made["client_secret"])
    shown = json.loads(run_cli("clients", "show", made["client_id"], "--database", database_url))
    assert shown["dpop_bound_access_tokens"] is True
    with running_server(database_url, log_dir=tmp_path) as server:
        bare = token_request(server.base_url, client, None)
        assert (bare.status_code, bare.json()["error"]) == (400, "invalid_dpop_proof")
        proof = DpopKey().proof(server.issuer + "/oauth2/token")
        assert token_request(server.base_url, client, proof).json()["token_type"] == "DPoP"


@pytest.mark.parametrize(
    "nonce", [pytest.param(False, id="no-nonce"), pytest.param(True, id="nonce")]
)
def test_oauth4webapi_dpop_gets_a_bound_token(
    database_url: str, tmp_path: Path, nonce: bool
) -> None:
    """oauth4webapi's DPoP handle obtains a DPoP token (retrying for a nonce when asked), bound
    to its key's thumbprint."""
    client = create_client(database_url, "svc", "read")
    rs = create_client(database_url, "rs", "read", introspect=True)
    extra = ["--dpop-nonce"] if nonce else []
    with running_server(database_url, log_dir=tmp_path, extra_args=extra) as server:
        proc = run_node("dpop_token.mjs", server.issuer, *client)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        got = json.loads(proc.stdout)
        assert (got["token_type"], got["scope"], got["retried"]) == ("dpop", "read", nonce)
        seen = introspect(server.base_url, rs, got["access_token"])
        assert seen["cnf"] == {"jkt": got["jkt"]}
