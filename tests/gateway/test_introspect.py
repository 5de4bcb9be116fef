"""Introspect mode, in-process: the resource-server library at the edge, claims as headers."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, MagicMock

import httpx
import pytest

from tests.gateway.support import UPSTREAM, echo, running, values
from tests.support.fake_events import FakeEventServer, sync_frame, until
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.gateway import (
    ClaimHeader,
    GatewaySettings,
    build_policy,
    create_gateway,
    parse_scope_rule,
)
from tokengate.resource import ValidatorSettings, create_validator
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.policy import Policy
from tokengate.resource.runtime.http import HttpTransport
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeAuthorizationServer, claims, static_validator

pytestmark = pytest.mark.anyio

READER = "tgat_reader"
WRITER = "tgat_writer"
SPOOF = {"X-Auth-Subject": "admin", "X-Auth-Scope": "admin", "X_Auth_Client_Id": "root"}


def validator() -> Validator:
    """Two known tokens; everything else is inactive."""
    return static_validator(
        {
            READER: claims(scope="read", sub="alice", client_id="app", exp=4_000_000_000),
            WRITER: claims(scope="read write", sub="bob", client_id="ops", exp=4_000_000_000),
        }
    )


def options() -> dict[str, object]:
    """`/auth-api/**` protected, POST /auth-api/items needing `write`."""
    rules = [parse_scope_rule("POST /auth-api/items=write")]
    return {"policy": build_policy(["/auth-api/**"], rules), "realm": "edge"}


class Counting:
    """The echo upstream, counting the requests that reach it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await echo(request)


async def test_valid_token_reaches_upstream_with_claim_headers() -> None:
    """200: the upstream gets sub, client_id and scope as headers, and the token as sent."""
    async with running(echo, validator(), **options()) as gw:
        response = await gw.http.get("/auth-api/hello", headers={"X-Access-Token": READER})
    assert response.status_code == 200
    assert values(response, "x-auth-subject") == ["alice"]
    assert values(response, "x-auth-client-id") == ["app"]
    assert values(response, "x-auth-scope") == ["read"]
    assert values(response, "x-access-token") == [READER]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "challenge"),
    [
        pytest.param("GET", "/auth-api/hello", {}, 401, 'Bearer realm="edge"', id="no-token"),
        pytest.param(
            "GET",
            "/auth-api/hello",
            {"X-Access-Token": "tgat_unknown"},
            401,
            'Bearer realm="edge", error="invalid_token"',
            id="inactive",
        ),
        pytest.param(
            "POST",
            "/auth-api/items",
            {"X-Access-Token": READER},
            403,
            'Bearer realm="edge", error="insufficient_scope"',
            id="missing-scope",
        ),
        pytest.param(
            "GET",
            "/auth-api/hello",
            {"X-Access-Token": READER, "Authorization": f"Bearer {WRITER}"},
            400,
            'Bearer realm="edge", error="invalid_request"',
            id="two-tokens",
        ),
    ],
)
async def test_refusals_never_reach_upstream(
    method: str, path: str, headers: dict[str, str], status: int, challenge: str
) -> None:
    """401/403/400 with the library's challenge; the upstream is not called."""
    upstream = Counting()
    async with running(upstream, validator(), **options()) as gw:
        response = await gw.http.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.headers["www-authenticate"].startswith(challenge)
    assert upstream.calls == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"X-Access-Token": "tgat_nope"}, id="inactive"),
        pytest.param({"X-Access-Token": "not a token"}, id="malformed"),
    ],
)
async def test_refusals_match_the_resource_server_middleware(headers: dict[str, str]) -> None:
    """Status, headers and body equal what `TokenGateMiddleware` sends for the same request."""
    policy = options()["policy"]
    assert isinstance(policy, Policy)
    plain = TokenGateMiddleware(echo_asgi, validator(), policy=policy, realm="edge")
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="http://rs") as rs:
        expected = await rs.get("/auth-api/x", headers=headers)
    async with running(echo, validator(), **options()) as gw:
        response = await gw.http.get("/auth-api/x", headers=headers)
    assert response.status_code == expected.status_code
    assert response.content == expected.content
    assert response.headers.multi_items() == expected.headers.multi_items()


async def echo_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """Never reached: every request in these cases is refused."""
    raise AssertionError("refused requests must not reach the app")


async def test_write_token_passes_scope_rule() -> None:
    """A token with `write` is let through to POST /auth-api/items."""
    async with running(echo, validator(), **options()) as gw:
        response = await gw.http.post("/auth-api/items", headers={"X-Access-Token": WRITER})
    assert response.status_code == 200
    assert values(response, "x-auth-scope") == ["read write"]


async def test_spoofed_claim_headers_are_replaced_on_protected_paths() -> None:
    """Client-sent X-Auth-* (any spelling) are dropped; only the validated values arrive."""
    async with running(echo, validator(), **options()) as gw:
        headers = {"X-Access-Token": READER, **SPOOF}
        response = await gw.http.get("/auth-api/hello", headers=headers)
    assert values(response, "x-auth-subject") == ["alice"]
    assert values(response, "x-auth-scope") == ["read"]
    assert values(response, "x-auth-client-id") == ["app"]
    assert values(response, "x_auth_client_id") == []


async def test_spoofed_claim_headers_are_stripped_on_unprotected_paths() -> None:
    """A public path gets no claim headers at all, whatever the client sent."""
    async with running(echo, validator(), **options()) as gw:
        response = await gw.http.get("/public/ping", headers={"X-Access-Token": READER, **SPOOF})
    assert response.status_code == 200
    seen = {k for k, _ in response.json()["headers"]}
    assert seen.isdisjoint(
        {"x-auth-subject", "x-auth-scope", "x-auth-client-id", "x_auth_client_id"}
    )


async def test_custom_claim_headers_replace_the_defaults() -> None:
    """Configured headers are sent (and stripped); the defaults then are not special."""
    chosen = (ClaimHeader("X-User", "sub"), ClaimHeader("X-Expires", "exp"))
    async with running(echo, validator(), claim_headers=chosen, **options()) as gw:
        headers = {"X-Access-Token": READER, "X-User": "mallory"}
        response = await gw.http.get("/auth-api/hello", headers=headers)
    assert values(response, "x-user") == ["alice"]
    assert values(response, "x-expires") == ["4000000000"]


def fake_validator(
    fake: FakeAuthorizationServer, transport: HttpTransport, **settings: Any
) -> Validator:
    """A `Validator` introspecting at `fake` over `transport`."""
    config = ValidatorSettings(
        fake.client_id, fake.client_secret, introspection_url=fake.introspection_url, **settings
    )
    return create_validator(config, transport=transport)


async def test_introspection_outage_is_503() -> None:
    """No answer and nothing cached → 503 with Retry-After, upstream not called."""
    upstream = Counting()
    fake = FakeAuthorizationServer()
    fake.failure = "down"
    down = fake_validator(fake, fake.transport(), revocation_events=False)
    async with running(upstream, down, **options()) as gw:
        response = await gw.http.get("/auth-api/hello", headers={"X-Access-Token": READER})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert upstream.calls == 0


async def test_cache_and_validator_metrics_are_exported() -> None:
    """The second call is a cache hit; /_tokengate/metrics shows tokengate_rs_* and _gw_*."""
    async with running(echo, validator(), **options()) as gw:
        for _ in range(2):
            await gw.http.get("/auth-api/hello", headers={"X-Access-Token": READER})
        text = (await gw.http.get("/_tokengate/metrics")).text
    assert "tokengate_rs_cache_hits_total 1.0" in text
    assert "tokengate_rs_cache_size 1.0" in text
    assert 'tokengate_gw_requests_total{code="200"} 2.0' in text


async def test_startup_starts_the_validator_and_shutdown_closes_it() -> None:
    """The gateway's lifespan drives the validator's: revocation events followed while it runs."""
    fake = FakeAuthorizationServer()
    events = FakeEventServer(other=fake.transport())
    edge = fake_validator(fake, events)
    assert edge.subscriber is not None
    async with running(echo, edge, **options()) as gw:
        await until(lambda: len(events.connections) == 1)
        events.connections[0].send(sync_frame(0))
        await until(lambda: edge.subscriber is not None and edge.subscriber.state == "live")
        token = {"X-Access-Token": fake.issue(scope="read", sub="carol")}
        assert (await gw.http.get("/auth-api/hello", headers=token)).status_code == 200
    assert edge.subscriber.state == "stopped"
    assert events.connections[0].closed


class Lookalike:
    """`validate` is a coroutine function returning claims with every scope."""

    async def validate(self, token: str, required_scopes: object = ()) -> TokenClaims:
        return claims(scope="read write admin")


@pytest.mark.parametrize(
    "impostor",
    [
        pytest.param(Lookalike(), id="async-validate-returning-claims"),
        pytest.param(MagicMock(), id="mock"),
        pytest.param(AsyncMock(), id="async-mock"),
    ],
)
def test_introspect_mode_refuses_a_validator_lookalike(impostor: object) -> None:
    """Regression (critical bypass): the gateway is not built over anything but a `Validator`."""
    settings = GatewaySettings(upstream=UPSTREAM, mode="introspect")
    with pytest.raises(TypeError, match="Validator"):
        create_gateway(settings, validator=impostor)  # type: ignore[arg-type]


def test_introspect_mode_without_a_validator_is_not_built() -> None:
    """No validator in introspect mode fails closed at construction (a ValueError)."""
    with pytest.raises(ValueError, match="needs a validator"):
        create_gateway(GatewaySettings(upstream=UPSTREAM, mode="introspect"), validator=None)
