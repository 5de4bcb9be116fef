"""private_key_jwt (RFC 7523 §2.2) at the token, introspection and revocation endpoints, and
clients registered with a JWKS (RFC 7591 §2), in process over a memory store."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tokengate.core import credentials
from tokengate.core.client_assertion import ASSERTION_TYPE, jwks_text
from tokengate.core.models import AdminRole, Client
from tokengate.management.service import Management
from tokengate.server import Settings, create_app
from tokengate.server.jwks import JwksResolver
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock

pytestmark = pytest.mark.anyio
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
JWKS_URI = "https://client.example/jwks.json"


@dataclass
class KeyServer:
    """What the client's jwks_uri serves, and how often it was asked."""

    keys: list[Any] = field(default_factory=lambda: [KEY])
    fetches: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})


@dataclass
class Harness:
    """The app over a memory store, a settable clock, a key server."""

    store: MemoryStore
    clock: FakeClock
    http: httpx.AsyncClient
    keys: KeyServer

    async def client(self, *, uri: bool = False, introspect: bool = False) -> Client:
        made = Client(
            client_id=credentials.new_client_id(), name="jwt", scopes=frozenset({"read"}),
            secret_hash=credentials.hash_value(credentials.new_client_secret()),
            can_introspect=introspect, auth_method="private_key_jwt",
            jwks=None if uri else jwks_text({"keys": [KEY.as_dict(private=False)]}),
            jwks_uri=JWKS_URI if uri else None,
        )  # fmt: skip
        await self.store.add_client(made)
        return made

    def assertion(self, client: Client, key: Any = KEY, **changes: Any) -> str:
        now = int(self.clock())
        claims = {
            "iss": client.client_id, "sub": client.client_id, "aud": ISSUER + "/oauth2/token",
            "iat": now, "exp": now + 60, "jti": secrets.token_hex(8), **changes,
        }  # fmt: skip
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)

    async def post(self, path: str, assertion: str, **form: str) -> httpx.Response:
        data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **form}
        return await self.http.post(path, data=data)

    async def token(self, client: Client, **changes: Any) -> httpx.Response:
        assertion = self.assertion(client, **changes)
        return await self.post("/oauth2/token", assertion, grant_type="client_credentials")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A fresh app whose jwks_uri fetches go to an in-process key server."""
    store, clock, keys = MemoryStore(), FakeClock(), KeyServer()
    app = create_app(Settings(issuer=ISSUER), store, clock)
    app.endpoints.jwks = JwksResolver(httpx.MockTransport(keys.handle), clock=clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Harness(store, clock, http, keys)
    await app.shutdown()


async def test_assertion_gets_a_token(harness: Harness) -> None:
    """§2.2: a client with an inline JWKS authenticates with a signed assertion."""
    response = await harness.token(await harness.client())
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


async def test_replayed_assertion_is_refused(harness: Harness) -> None:
    """§3 item 7: the same assertion twice: the second is invalid_client (401)."""
    client = await harness.client()
    assertion = harness.assertion(client)
    first = await harness.post("/oauth2/token", assertion, grant_type="client_credentials")
    second = await harness.post("/oauth2/token", assertion, grant_type="client_credentials")
    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (401, "invalid_client")
    assert "already used" in second.json()["error_description"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "https://elsewhere.example/oauth2/token"}, id="wrong-aud"),
        pytest.param({"iss": "tgc_someone"}, id="wrong-iss"),
        pytest.param({"exp": 1}, id="expired"),
    ],
)
async def test_bad_assertion_is_invalid_client(harness: Harness, changes: dict[str, Any]) -> None:
    """RFC 6749 §5.2: a failed check is 401 invalid_client with a Basic challenge."""
    response = await harness.token(await harness.client(), **changes)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_basic_header_and_assertion_is_refused(harness: Harness) -> None:
    """Exactly one method: a Basic header beside an assertion is refused (never cached)."""
    client = await harness.client()
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": harness.assertion(client),
    }
    response = await harness.http.post(
        "/oauth2/token", data=data, headers={"Authorization": "Basic dGdjOng="}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_introspection_and_revocation_accept_assertions(harness: Harness) -> None:
    """The assertion's aud may name the endpoint called; each call needs a fresh jti."""
    issuer_client, rs = await harness.client(), await harness.client(introspect=True)
    token = (await harness.token(issuer_client)).json()["access_token"]
    aud = ISSUER + "/oauth2/introspect"
    seen = await harness.post("/oauth2/introspect", harness.assertion(rs, aud=aud), token=token)
    assert seen.json()["active"] is True
    revoked = await harness.post(
        "/oauth2/revoke", harness.assertion(issuer_client, aud=ISSUER), token=token
    )
    assert revoked.status_code == 200
    again = await harness.post("/oauth2/introspect", harness.assertion(rs), token=token)
    assert again.json() == {"active": False}


async def test_jwks_uri_is_cached_and_refetched_on_unknown_kid(harness: Harness) -> None:
    """One fetch serves many assertions; a new kid refetches once, rate-limited."""
    client = await harness.client(uri=True)
    for _ in range(3):
        assert (await harness.token(client)).status_code == 200
    assert harness.keys.fetches == 1
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    harness.keys.keys = [KEY, rotated]
    early = await harness.token(client, key=rotated)
    assert early.status_code == 401  # fetched less than REFRESH_INTERVAL ago: not refetched
    harness.clock.now += 31
    assert (await harness.token(client, key=rotated)).status_code == 200
    assert harness.keys.fetches == 2


async def test_secret_client_cannot_use_an_assertion(harness: Harness) -> None:
    """A client registered for secrets has no keys: its assertion is invalid_client."""
    secret_client = Client(
        credentials.new_client_id(), "s", credentials.hash_value("x"), frozenset({"read"})
    )
    await harness.store.add_client(secret_client)
    assert (await harness.token(secret_client)).status_code == 401


async def _register(harness: Harness, document: dict[str, Any]) -> httpx.Response:
    management = Management(harness.store, "test", harness.clock)
    _, initial = await management.create_admin_token(AdminRole.REGISTER, 300, "t")
    headers = {"Authorization": f"Bearer {initial}"}
    return await harness.http.post("/oauth2/register", json=document, headers=headers)


async def test_registration_with_a_jwks_gives_no_secret(harness: Harness) -> None:
    """RFC 7591: a private_key_jwt client registered with `jwks` gets no secret, then a token."""
    document = {
        "client_name": "jwt", "scope": "read", "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [KEY.as_dict(private=False)]},
    }  # fmt: skip
    made = await _register(harness, document)
    assert made.status_code == 201, made.text
    body = made.json()
    assert "client_secret" not in body
    assert body["jwks"] == document["jwks"]
    client = await harness.store.get_client(body["client_id"])
    assert client is not None
    assert (await harness.token(client)).status_code == 200


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param(
            {"jwks": {"keys": [RSAKey.generate_key(2048).as_dict(private=True)]}},
            "public",
            id="private-key-in-jwks",
        ),
        pytest.param({"jwks_uri": "http://keys.example/jwks"}, "https", id="http-jwks_uri"),
        pytest.param(
            {"jwks_uri": JWKS_URI, "jwks": {"keys": [KEY.as_dict(private=False)]}},
            "exactly one",
            id="both-jwks-and-uri",
        ),
        pytest.param({}, "exactly one", id="no-keys"),
    ],
)
async def test_registration_refuses_bad_keys(
    harness: Harness, extra: dict[str, Any], reason: str
) -> None:
    """RFC 7591 §3.2.2: unusable keys are invalid_client_metadata, nothing stored."""
    document = {"client_name": "jwt", "token_endpoint_auth_method": "private_key_jwt", **extra}
    refused = await _register(harness, document)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")
    assert reason in refused.json()["error_description"]
    assert await harness.store.list_clients() == []


async def test_admin_api_creates_a_jwks_uri_client(harness: Harness) -> None:
    """POST /admin/api/clients with `jwks_uri`: 201, client_id and no secret."""
    management = Management(harness.store, "test", harness.clock)
    _, admin = await management.create_admin_token(AdminRole.ADMIN, 300, "t")
    document = {"client_name": "jwt", "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": JWKS_URI, "scope": "read"}  # fmt: skip
    made = await harness.http.post(
        "/admin/api/clients", json=document, headers={"Authorization": f"Bearer {admin}"}
    )
    assert made.status_code == 201, made.text
    assert set(made.json()) == {"client_id"}
    shown = await harness.store.get_client(made.json()["client_id"])
    assert shown is not None
    assert shown.jwks_uri == JWKS_URI
    assert (await harness.token(shown)).status_code == 200


async def test_rotating_the_secret_of_a_jwt_client_is_refused(harness: Harness) -> None:
    """A private_key_jwt client has no secret: rotate-secret is invalid_request, not a secret."""
    client = await harness.client()
    management = Management(harness.store, "test", harness.clock)
    _, admin = await management.create_admin_token(AdminRole.ADMIN, 300, "t")
    refused = await harness.http.post(
        f"/admin/api/clients/{client.client_id}/rotate-secret", json={"grace": 0},
        headers={"Authorization": f"Bearer {admin}"},
    )  # fmt: skip
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
