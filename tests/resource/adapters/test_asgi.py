"""The pure-ASGI middleware, driven through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tests.support.asgi import lifespan
from tests.support.dpop import bare_challenges
from tests.support.fake_events import FakeEventServer, until
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.resource import ValidatorSettings, create_validator
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeAuthorizationServer

REALM = "test"


async def whoami(request: Request) -> JSONResponse:
    claims = request.auth
    assert request.state.token_claims is claims
    return JSONResponse({"sub": claims.sub, "scope": claims.scope})


@requires("admin")
async def admin(request: Request) -> PlainTextResponse:
    return PlainTextResponse("admin")


async def public(request: Request) -> PlainTextResponse:
    return PlainTextResponse("public")


def _validator(fake: FakeAuthorizationServer) -> Validator:
    settings = ValidatorSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        introspection_url=fake.introspection_url,
        failure_threshold=100,
        revocation_events=False,
    )
    return create_validator(settings, transport=fake.transport())


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """The authorization server behind the validator."""
    return FakeAuthorizationServer()


@pytest.fixture
async def client(fake: FakeAuthorizationServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to a protected Starlette app in-process."""
    routes = [
        Route("/api/whoami", whoami),
        Route("/api/admin", admin),
        Route("/public", public),
    ]
    policy = Policy([Rule("/api/whoami", scopes=["read"]), Rule("/api/**")])
    app = TokenGateMiddleware(
        Starlette(routes=routes), _validator(fake), policy=policy, realm=REALM
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
        yield http


@pytest.mark.anyio
async def test_public_path_needs_no_token(client: httpx.AsyncClient) -> None:
    """Paths outside the policy pass untouched."""
    response = await client.get("/public")
    assert response.status_code == 200
    assert response.text == "public"


@pytest.mark.anyio
async def test_missing_token_is_401_with_bare_challenge(client: httpx.AsyncClient) -> None:
    """RFC 6750 §3.1: no token → 401 and `Bearer realm` without error code."""
    response = await client.get("/api/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == bare_challenges(REALM)


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["X-Access-Token", "Authorization"])
async def test_valid_token_reaches_the_app_with_claims(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer, header: str
) -> None:
    """A valid token from either header passes; the handler sees the claims."""
    token = fake.issue(scope="read", sub="alice")
    value = f"Bearer {token}" if header == "Authorization" else token
    response = await client.get("/api/whoami", headers={header: value})
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "scope": "read"}


@pytest.mark.anyio
async def test_missing_scope_is_403(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """A token without the route's scope → 403 `insufficient_scope` naming the scope."""
    token = fake.issue(scope="write")
    response = await client.get("/api/whoami", headers={"X-Access-Token": token})
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="read"' in challenge
    assert response.json()["error"] == "insufficient_scope"


@pytest.mark.anyio
async def test_starlette_requires_works_on_the_claims(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """`scope["auth"].scopes` is what Starlette's `@requires` reads."""
    ok = await client.get("/api/admin", headers={"X-Access-Token": fake.issue(scope="admin")})
    denied = await client.get("/api/admin", headers={"X-Access-Token": fake.issue(scope="read")})
    assert ok.status_code == 200
    assert denied.status_code == 403


@pytest.mark.anyio
async def test_inactive_token_is_401_invalid_token(client: httpx.AsyncClient) -> None:
    """Unknown or revoked tokens → 401 `invalid_token`."""
    response = await client.get("/api/whoami", headers={"X-Access-Token": "revoked"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_disagreeing_headers_are_400(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """Both headers with different tokens → 400 `invalid_request`, no introspection."""
    headers = {"X-Access-Token": fake.issue(), "Authorization": f"Bearer {fake.issue()}"}
    response = await client.get("/api/whoami", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert fake.introspection_calls == 0


@pytest.mark.anyio
@pytest.mark.parametrize("failure", [500, "down", "timeout", "garbage"])
async def test_upstream_failure_is_503_with_retry_after(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer, failure: Any
) -> None:
    """AS broken and nothing cached → 503 + Retry-After, never 401."""
    token = fake.issue(scope="read")
    fake.failure = failure
    response = await client.get("/api/whoami", headers={"X-Access-Token": token})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "www-authenticate" not in response.headers


@pytest.mark.anyio
async def test_cached_token_passes_during_outage(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """A token seen before the outage keeps working from cache."""
    token = fake.issue(scope="read")
    assert (await client.get("/api/whoami", headers={"X-Access-Token": token})).status_code == 200
    fake.failure = "down"
    assert (await client.get("/api/whoami", headers={"X-Access-Token": token})).status_code == 200


class _Recorder:
    """A tiny ASGI app recording the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))


async def _run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _ws_scope(path: str, headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {"type": "websocket", "path": path, "headers": headers, **extra}


@pytest.mark.anyio
async def test_lifespan_and_unprotected_scopes_pass_through(fake: FakeAuthorizationServer) -> None:
    """Lifespan events reach the app untouched."""
    inner = _Recorder()
    app = TokenGateMiddleware(inner, _validator(fake))
    await _run(app, {"type": "lifespan"})
    assert inner.scopes == [{"type": "lifespan"}]


@pytest.mark.anyio
async def test_lifespan_starts_and_closes_the_validator() -> None:
    """Startup starts the validator (events followed); shutdown closes it (events stopped)."""
    fake = FakeAuthorizationServer()
    events = FakeEventServer(other=fake.transport())
    settings = ValidatorSettings(
        fake.client_id, fake.client_secret, introspection_url=fake.introspection_url
    )
    validator = create_validator(settings, transport=events)
    assert validator.subscriber is not None
    app = TokenGateMiddleware(Starlette(routes=[Route("/public", public)]), validator)
    async with lifespan(app):
        await until(lambda: len(events.connections) == 1)
        assert validator.subscriber.state == "connecting"
    assert validator.subscriber.state == "stopped"
    assert events.connections[0].closed


@pytest.mark.anyio
async def test_websocket_without_token_is_closed_with_policy_violation(
    fake: FakeAuthorizationServer,
) -> None:
    """A protected WebSocket handshake without a token is closed (1008)."""
    inner = _Recorder()
    app = TokenGateMiddleware(inner, _validator(fake))
    sent = await _run(app, _ws_scope("/ws", []))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert inner.scopes == []


@pytest.mark.anyio
async def test_websocket_denial_response_when_supported(fake: FakeAuthorizationServer) -> None:
    """With the `websocket.http.response` extension the real 401 is sent."""
    app = TokenGateMiddleware(_Recorder(), _validator(fake), realm=REALM)
    scope = _ws_scope("/ws", [], extensions={"websocket.http.response": {}})
    sent = await _run(app, scope)
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 401
    assert sent[1]["type"] == "websocket.http.response.body"


@pytest.mark.anyio
async def test_websocket_with_token_gets_claims(fake: FakeAuthorizationServer) -> None:
    """A valid token on the handshake puts claims into the scope."""
    inner = _Recorder()
    app = TokenGateMiddleware(inner, _validator(fake))
    token = fake.issue(sub="ws-user")
    await _run(app, _ws_scope("/ws", [(b"x-access-token", token.encode())], state={"a": 1}))
    scope = inner.scopes[0]
    assert scope["auth"].sub == "ws-user"
    assert scope["state"] == {"a": 1, "token_claims": scope["auth"]}
