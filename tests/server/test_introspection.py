"""RFC 7662 introspection at POST /oauth2/introspect."""

from __future__ import annotations

import httpx
import pytest

from tokengate.core.credentials import hash_value, new_access_token
from tokengate.server import Settings, create_app
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness

pytestmark = pytest.mark.anyio


async def test_active_token_claims(harness: Harness) -> None:
    """§2.2: an active token carries the full claim set."""
    client = await harness.register("read write", ttl=300)
    rs = await harness.register(introspect=True)
    token = await harness.issue(client, scope="read")
    response = await harness.introspect(rs, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    now = int(harness.clock.now)
    assert body == {
        "active": True,
        "scope": "read",
        "client_id": client.client_id,
        "token_type": "Bearer",
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "sub": client.client_id,
        "iss": ISSUER,
        "jti": body["jti"],
    }
    assert len(body["jti"]) == 32


@pytest.mark.parametrize(
    "case", ["unknown", "malformed", "expired", "revoked", "owner-disabled", "owner-deleted"]
)
async def test_inactive_is_exactly_active_false(harness: Harness, case: str) -> None:
    """§2.2: inactive tokens yield exactly {"active": false}."""
    client = await harness.register(ttl=60)
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    if case == "unknown":
        token = new_access_token()
    elif case == "malformed":
        token = "not-a-token"
    elif case == "expired":
        harness.clock.now += 60
    elif case == "revoked":
        await harness.http.post("/oauth2/revoke", data={"token": token}, headers=client.basic())
    elif case == "owner-disabled":
        await harness.store.disable_client(client.client_id, int(harness.clock.now))
    else:
        await harness.store.delete_client(client.client_id, int(harness.clock.now))
    response = await harness.introspect(rs, token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_token_valid_until_just_before_exp(harness: Harness) -> None:
    """§4: a token is active strictly before exp."""
    client = await harness.register(ttl=60)
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    harness.clock.now += 59
    assert (await harness.introspect(rs, token)).json()["active"] is True


async def test_audience_restriction(harness: Harness) -> None:
    """§4: a token for another audience is inactive for this resource server."""
    client = await harness.register(audiences=("https://orders.test", "https://billing.test"))
    orders = await harness.register(introspect=True, audiences=("https://orders.test",))
    billing = await harness.register(introspect=True, audiences=("https://billing.test",))
    token = await harness.issue(client, resource="https://orders.test")
    assert (await harness.introspect(orders, token)).json()["active"] is True
    assert (await harness.introspect(billing, token)).json() == {"active": False}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "made_up"])
async def test_hint_never_required_unknown_ignored(harness: Harness, hint: str) -> None:
    """§2.1: the hint is optional, a wrong or unknown one does not hide the token."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    response = await harness.introspect(rs, token, token_type_hint=hint)
    assert response.json()["active"] is True


async def test_caller_without_permission(harness: Harness) -> None:
    """§2.1/§2.3: a client without introspection permission gets 401 invalid_client."""
    client = await harness.register()
    token = await harness.issue(client)
    response = await harness.introspect(client, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_unauthenticated_caller(harness: Harness) -> None:
    """§2.1: the endpoint requires authorization (prevents token scanning)."""
    response = await harness.http.post("/oauth2/introspect", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_missing_token_parameter(harness: Harness) -> None:
    """§2.1: `token` is required."""
    rs = await harness.register(introspect=True)
    response = await harness.http.post(
        "/oauth2/introspect", data={"token_type_hint": "access_token"}, headers=rs.basic()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_post_authentication_for_introspection(harness: Harness) -> None:
    """§2.1 allows any client authentication; client_secret_post works."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    response = await harness.http.post(
        "/oauth2/introspect",
        data={"token": token, "client_id": rs.client_id, "client_secret": rs.secret},
    )
    assert response.json()["active"] is True


async def test_unknown_and_foreign_tokens_are_cached_per_caller() -> None:
    """Every lookup is cached, found or not, for the caller that made it only: another caller's
    lookup does not make a first look a cache hit; answers stay exact."""
    store, clock = MemoryStore(), FakeClock()
    app = create_app(Settings(issuer=ISSUER), store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        harness = Harness(store, clock, http)
        owner = await harness.register(audiences=("https://b.example",))
        rs_a = await harness.register("", introspect=True, audiences=("https://a.example",))
        rs_b = await harness.register("", introspect=True, audiences=("https://b.example",))
        token, unknown = await harness.issue(owner), new_access_token()
        cache = app.endpoints.token_cache
        assert (await harness.introspect(rs_b, token)).json()["active"] is True
        assert cache.get(hash_value(token), rs_a.client_id) is None
        for value in (token, unknown, token, unknown):
            assert (await harness.introspect(rs_a, value)).json() == {"active": False}
        assert cache.get(hash_value(token), rs_a.client_id) is not None
        assert cache.get(hash_value(unknown), rs_a.client_id) is not None
        assert cache.get(hash_value(unknown), rs_b.client_id) is None
        assert (await harness.introspect(rs_b, unknown)).json() == {"active": False}
        assert (await harness.introspect(rs_b, token)).json()["active"] is True
    await app.shutdown()
