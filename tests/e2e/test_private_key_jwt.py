"""private_key_jwt (RFC 7523 §2.2) through a real `tokengate serve`, on SQLite and PostgreSQL:
clients made by the CLI with an inline JWKS or a `jwks_uri`, assertions signed by Authlib's
`PrivateKeyJWT` and by oauth4webapi's `PrivateKeyJwt`, replay refused across replicas."""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import ECKey

from tests.support.node import run_node
from tests.support.postgres import fresh_database
from tests.support.servers import ServerProcess, run_cli, running_server

pytestmark = pytest.mark.e2e
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's PrivateKeyJWT with a 60 s assertion: its default, an hour, is longer than
    tokengate's 5-minute bound (README: private_key_jwt)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                alg=self.alg, expires_in=60,
            )
        )  # fmt: skip


def make_key(kid: str = "k1") -> ECKey:
    """A P-256 signing key."""
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def public_jwks(*keys: ECKey) -> dict[str, Any]:
    """The JWKS of the keys' public halves."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def create_jwt_client(
    database_url: str, tmp_path: Path, key: ECKey, *, introspect: bool = False
) -> str:
    """`tokengate clients create --jwks FILE --json`: a client id and no secret."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(key)))
    args = ["clients", "create", "jwt", "--scope", "read", "--jwks", str(jwks)]
    if introspect:
        args.append("--introspect")
    made = json.loads(run_cli(*args, "--database", database_url, "--json"))
    assert set(made) == {"client_id"}
    return str(made["client_id"])


def authlib_token(server: ServerProcess, client_id: str, key: ECKey) -> dict[str, Any]:
    """A token fetched by Authlib's httpx OAuth2Client with private_key_jwt (ES256)."""
    import authlib.deprecate  # noqa: F401, PLC0415 - installs its own "always" filter on import

    with warnings.catch_warnings():
        # Authlib 1.9 steers users to its httpx2 integration; the httpx one is what people run.
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client  # noqa: PLC0415
    auth = ShortLivedPrivateKeyJWT(alg="ES256")
    with OAuth2Client(
        client_id, key, token_endpoint_auth_method=auth, scope="read", timeout=5.0
    ) as client:
        client.register_client_auth_method(auth)
        token: dict[str, Any] = client.fetch_token(
            server.issuer + "/oauth2/token", grant_type="client_credentials"
        )
    return token


def post_assertion(url: str, assertion: str, **form: str) -> httpx.Response:
    """A form POST authenticated by a given assertion."""
    data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **form}
    return httpx.post(url, data=data, timeout=5.0)


def test_authlib_private_key_jwt_gets_a_token(database_url: str, tmp_path: Path) -> None:
    """Authlib signs, the server verifies: a token; the same assertion again is refused."""
    key = make_key()
    client_id = create_jwt_client(database_url, tmp_path, key)
    with running_server(database_url, log_dir=tmp_path) as server:
        token_url = server.issuer + "/oauth2/token"
        token = authlib_token(server, client_id, key)
        assert (token["token_type"], token["scope"]) == ("Bearer", "read")
        assertion = private_key_jwt_sign(key, client_id, token_url, alg="ES256", expires_in=60)
        grant = {"grant_type": "client_credentials"}
        assert post_assertion(token_url, assertion, **grant).status_code == 200
        replayed = post_assertion(token_url, assertion, **grant)
        assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")


def test_assertion_authenticates_introspection(database_url: str, tmp_path: Path) -> None:
    """A resource server with private_key_jwt introspects; aud may be the issuer."""
    key = make_key()
    client_id = create_jwt_client(database_url, tmp_path, key, introspect=True)
    with running_server(database_url, log_dir=tmp_path) as server:
        token = authlib_token(server, client_id, key)["access_token"]
        assertion = private_key_jwt_sign(key, client_id, server.issuer, alg="ES256", expires_in=60)
        seen = post_assertion(server.issuer + "/oauth2/introspect", assertion, token=token)
        assert (seen.status_code, seen.json()["active"]) == (200, True)


@contextlib.contextmanager
def key_server(jwks: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Serve `jwks` (mutable: change it to rotate) on loopback HTTP; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json", jwks
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_jwks_uri_client_gets_a_token(tmp_path: Path) -> None:
    """A client created with --jwks-uri: the server fetches its keys (loopback http allowed)."""
    key = make_key()
    database_url = f"sqlite:///{tmp_path / 'tokengate.db'}"
    with key_server(public_jwks(key)) as (uri, _):
        made = run_cli("clients", "create", "jwt", "--scope", "read", "--jwks-uri", uri,
                       "--database", database_url, "--json")  # fmt: skip
        client_id = json.loads(made)["client_id"]
        with running_server(database_url, log_dir=tmp_path) as server:
            token = authlib_token(server, client_id, key)
            assert token["token_type"] == "Bearer"


def test_cli_refuses_a_private_key_in_the_jwks(tmp_path: Path) -> None:
    """`clients create --jwks` with a private key fails and creates nothing."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [make_key().as_dict(private=True)]}))
    database_url = f"sqlite:///{tmp_path / 'tokengate.db'}"
    out = run_cli("clients", "create", "x", "--jwks", str(jwks), "--database", database_url,
                  check=False)  # fmt: skip
    assert out == ""
    assert run_cli("clients", "list", "--database", database_url) == ""


@pytest.mark.postgres
def test_replay_is_refused_by_another_replica(tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL: an assertion used at one is refused by the other."""
    key = make_key()
    with fresh_database() as url:
        client_id = create_jwt_client(url, tmp_path, key)
        issuer = "http://tokengate.test"  # one issuer for both replicas, as behind a balancer
        with (
            running_server(url, issuer, log_dir=tmp_path) as one,
            running_server(url, issuer, log_dir=tmp_path) as two,
        ):
            assertion = private_key_jwt_sign(key, client_id, issuer, alg="ES256", expires_in=60)
            grant = {"grant_type": "client_credentials"}
            first = post_assertion(one.base_url + "/oauth2/token", assertion, **grant)
            assert first.status_code == 200, first.text
            second = post_assertion(two.base_url + "/oauth2/token", assertion, **grant)
            assert (second.status_code, second.json()["error"]) == (401, "invalid_client")
            assert "already used" in second.json()["error_description"]


def test_oauth4webapi_private_key_jwt_gets_a_token(database_url: str, tmp_path: Path) -> None:
    """oauth4webapi's PrivateKeyJwt (ES256, Web Crypto) obtains a token from tokengate."""
    key = make_key()
    client_id = create_jwt_client(database_url, tmp_path, key)
    with running_server(database_url, log_dir=tmp_path) as server:
        private = json.dumps(key.as_dict(private=True))
        proc = run_node("private_key_jwt.mjs", server.issuer, client_id, private)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout) == {"token_type": "bearer", "scope": "read"}
