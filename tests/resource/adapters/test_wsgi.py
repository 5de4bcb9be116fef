"""The WSGI middleware over the same core, driven through httpx.WSGITransport."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest

from tokengate.resource.adapters.wsgi import CLAIMS_ENVIRON_KEY, TokenGateWSGIMiddleware
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.runtime.settings import ValidatorSettings, create_sync_validator
from tokengate.resource.testing import FakeAuthorizationServer


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A minimal WSGI app echoing the caller's subject."""
    claims = environ.get(CLAIMS_ENVIRON_KEY)
    body = json.dumps({"sub": claims.sub if claims else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """The authorization server behind the sync validator."""
    return FakeAuthorizationServer()


def _client(fake: FakeAuthorizationServer, token_header: str = "X-Access-Token") -> httpx.Client:
    settings = ValidatorSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        introspection_url=fake.introspection_url,
    )
    validator = create_sync_validator(settings, transport=fake.transport())
    policy = Policy(
        [
            Rule("/api/café", public=True),
            Rule("/api/write", methods=["POST"], scopes=["write"]),
            Rule("/api/**"),
        ]
    )
    app = TokenGateWSGIMiddleware(
        echo_app, validator, policy=policy, token_header=token_header, realm="wsgi"
    )
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://rs")


@pytest.fixture
def client(fake: FakeAuthorizationServer) -> Iterator[httpx.Client]:
    """An HTTP client talking to the protected WSGI app in-process."""
    with _client(fake) as http:
        yield http


def test_public_path_passes(client: httpx.Client) -> None:
    """Unprotected paths reach the app without a token."""
    assert client.get("/health").json() == {"sub": None}


def test_missing_token_is_401(client: httpx.Client) -> None:
    """No token → 401 with a bare Bearer challenge."""
    response = client.get("/api/x")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="wsgi"'


def test_valid_token_reaches_app(client: httpx.Client, fake: FakeAuthorizationServer) -> None:
    """The claims are in `environ["tokengate.claims"]`."""
    token = fake.issue(sub="bob")
    assert client.get("/api/x", headers={"X-Access-Token": token}).json() == {"sub": "bob"}
    bearer = client.get("/api/x", headers={"Authorization": f"Bearer {token}"})
    assert bearer.json() == {"sub": "bob"}
    assert fake.introspection_calls == 1


def test_scope_and_conflicts(client: httpx.Client, fake: FakeAuthorizationServer) -> None:
    """Missing scope → 403; disagreeing headers → 400; inactive → 401."""
    token = fake.issue(scope="read")
    forbidden = client.post("/api/write", headers={"X-Access-Token": token})
    assert forbidden.status_code == 403
    assert 'scope="write"' in forbidden.headers["www-authenticate"]
    conflict = client.get(
        "/api/x", headers={"X-Access-Token": token, "Authorization": "Bearer other"}
    )
    assert conflict.status_code == 400
    assert client.get("/api/x", headers={"X-Access-Token": "nope"}).status_code == 401


def test_outage_is_503(client: httpx.Client, fake: FakeAuthorizationServer) -> None:
    """AS down and nothing cached → 503 with Retry-After."""
    fake.failure = "down"
    response = client.get("/api/x", headers={"X-Access-Token": fake.issue()})
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_authorization_as_the_token_header(fake: FakeAuthorizationServer) -> None:
    """Configuring the custom header as Authorization does not count it twice."""
    with _client(fake, token_header="Authorization") as http:
        response = http.get("/api/x", headers={"Authorization": f"Bearer {fake.issue(sub='c')}"})
    assert response.json() == {"sub": "c"}


def test_non_ascii_paths_are_matched_as_utf8(fake: FakeAuthorizationServer) -> None:
    """PEP 3333's latin-1 path is decoded back to UTF-8 before matching."""
    with _client(fake) as http:
        assert http.get("/api/caf%C3%A9").status_code == 200
        assert http.get("/api/cafe").status_code == 401


def test_pep3333_latin1_paths_are_decoded(fake: FakeAuthorizationServer) -> None:
    """A compliant server's latin-1-decoded UTF-8 path matches the UTF-8 rule."""
    settings = ValidatorSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        introspection_url=fake.introspection_url,
    )
    validator = create_sync_validator(settings, transport=fake.transport())
    app = TokenGateWSGIMiddleware(
        echo_app, validator, policy=Policy([Rule("/café"), Rule("/**", public=True)])
    )
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> object:
        statuses.append(status)
        return None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/café".encode().decode("latin-1")}
    app(environ, start_response)  # type: ignore[arg-type]
    assert statuses == ["401 Unauthorized"]
