"""The decision service in process (`tokengate.authz`): every documented answer, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tokengate.authz import AuthzSettings, create_authz
from tokengate.gateway.settings import build_policy, parse_scope_rule
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.validator import Validator, create_validator
from tokengate.resource.testing import FakeAuthorizationServer, claims, static_validator

pytestmark = pytest.mark.anyio
TOKENS = {
    "reader": claims(scope="read", sub="alice", client_id="app", exp=4_000_000_000),
    "writer": claims(scope="read write", sub="bob", client_id="app", exp=4_000_000_000),
}
POLICY = build_policy(["/auth-api/**"], [parse_scope_rule("POST /auth-api/items=write")])


@pytest.fixture
def anyio_backend() -> str:
    """The runtime is asyncio."""
    return "asyncio"


async def _client(validator: Validator) -> AsyncIterator[httpx.AsyncClient]:
    app = create_authz(AuthzSettings(policy=POLICY), validator)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authz") as client:
        yield client
    await validator.aclose()


@pytest.fixture
async def authz() -> AsyncIterator[httpx.AsyncClient]:
    """The service over a fixed token table."""
    async for client in _client(static_validator(TOKENS)):
        yield client


def _nginx(method: str, uri: str, **headers: str) -> dict[str, str]:
    return {"X-Original-Method": method, "X-Original-URI": uri, **headers}


async def test_allowed_with_identity_headers(authz: httpx.AsyncClient) -> None:
    """200 carries the claims in the identity headers and no body."""
    answer = await authz.get(
        "/decide", headers=_nginx("GET", "/auth-api/x", **{"X-Access-Token": "reader"})
    )
    assert answer.status_code == 200
    assert answer.headers["x-auth-subject"] == "alice"
    assert answer.headers["x-auth-client-id"] == "app"
    assert answer.headers["x-auth-scope"] == "read"
    assert answer.content == b""


async def test_unprotected_path_has_no_identity(authz: httpx.AsyncClient) -> None:
    """Outside `--protect`: 200 with no identity headers, token or not."""
    answer = await authz.get("/decide", headers=_nginx("GET", "/public/x"))
    assert answer.status_code == 200
    assert "x-auth-subject" not in answer.headers


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        pytest.param({}, 401, 'Bearer realm="tokengate"', id="no-token"),
        pytest.param(
            {"X-Access-Token": "unknown"}, 401, 'error="invalid_token"', id="unknown-token"
        ),
        pytest.param(
            {"X-Access-Token": "reader", "Authorization": "Bearer writer"},
            400,
            'error="invalid_request"',
            id="ambiguous-token",
        ),
    ],
)
async def test_refusals(
    authz: httpx.AsyncClient, headers: dict[str, str], status: int, challenge: str
) -> None:
    """RFC 6750 §3: 401 with the challenge, 400 for two different tokens."""
    answer = await authz.get("/decide", headers=_nginx("GET", "/auth-api/x", **headers))
    assert answer.status_code == status
    assert challenge in answer.headers["www-authenticate"]


async def test_missing_scope_is_403(authz: httpx.AsyncClient) -> None:
    """The route's scope is matched on the original method: 403 naming it."""
    answer = await authz.post(
        "/decide", headers=_nginx("POST", "/auth-api/items", **{"X-Access-Token": "reader"})
    )
    assert answer.status_code == 403
    assert 'scope="write"' in answer.headers["www-authenticate"]
    allowed = await authz.get(
        "/decide", headers=_nginx("POST", "/auth-api/items", **{"X-Access-Token": "writer"})
    )
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    "uri", ["/public/../auth-api/x", "/public/%2e%2e/auth-api/x", "/public%2Fx", "/a\\b"]
)
async def test_ambiguous_original_target_is_400(authz: httpx.AsyncClient, uri: str) -> None:
    """Whatever the proxy normalises, an ambiguous raw target is refused, never allowed."""
    answer = await authz.get("/decide", headers=_nginx("GET", uri, **{"X-Access-Token": "reader"}))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


async def test_no_original_request_is_400(authz: httpx.AsyncClient) -> None:
    """A misconfigured proxy that sends no original request gets 400, not an allow."""
    answer = await authz.get("/decide", headers={"X-Access-Token": "reader"})
    assert answer.status_code == 400


async def test_traefik_and_caddy_headers(authz: httpx.AsyncClient) -> None:
    """X-Forwarded-Method and X-Forwarded-Uri describe the original request too."""
    headers = {
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": "/auth-api/x",
        "X-Forwarded-Host": "api.example",
        "Authorization": "Bearer reader",
    }
    answer = await authz.get("/decide", headers=headers)
    assert (answer.status_code, answer.headers["x-auth-subject"]) == (200, "alice")


async def test_envoy_ext_authz(authz: httpx.AsyncClient) -> None:
    """Envoy: the original method and `/envoy` + the original path."""
    allowed = await authz.request(
        "DELETE", "/envoy/auth-api/x?y=1", headers={"X-Access-Token": "reader"}
    )
    assert (allowed.status_code, allowed.headers["x-auth-subject"]) == (200, "alice")
    refused = await authz.post("/envoy/auth-api/items", headers={"X-Access-Token": "reader"})
    assert refused.status_code == 403


async def test_health_metrics_and_404(authz: httpx.AsyncClient) -> None:
    """`/healthz`, `/metrics` with decisions by result, anything else 404."""
    await authz.get("/decide", headers=_nginx("GET", "/auth-api/x", **{"X-Access-Token": "reader"}))
    assert (await authz.get("/healthz")).status_code == 200
    text = (await authz.get("/metrics")).text
    assert 'tokengate_authz_decisions_total{result="allowed"} 1.0' in text
    assert "tokengate_rs_cache_hits" in text
    assert (await authz.get("/elsewhere")).status_code == 404


async def test_authorization_server_down_is_503_with_retry_after() -> None:
    """Nothing cached and the issuer unreachable: 503 + Retry-After, never 401 or 500."""
    fake = FakeAuthorizationServer()
    fake.failure = "down"
    settings = ValidatorSettings(
        fake.client_id,
        fake.client_secret,
        introspection_url=fake.introspection_url,
        revocation_events=False,
    )
    async for client in _client(create_validator(settings, transport=fake.transport())):
        answer = await client.get(
            "/decide", headers=_nginx("GET", "/auth-api/x", **{"X-Access-Token": "tok"})
        )
        assert answer.status_code == 503
        assert "retry-after" in answer.headers


async def test_an_unexpected_failure_is_a_503_not_a_500(authz: httpx.AsyncClient) -> None:
    """Fail closed: a bug in the pipeline denies the request (and is logged)."""

    class Broken(Exception):
        pass

    app = authz._transport.app  # type: ignore[attr-defined]

    async def explode(*args: object) -> TokenClaims:
        raise Broken

    app.decider.validator.validate = explode
    answer = await authz.get(
        "/decide", headers=_nginx("GET", "/auth-api/x", **{"X-Access-Token": "reader"})
    )
    assert answer.status_code == 503
