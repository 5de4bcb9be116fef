"""RFC 9701 at the introspection endpoint: signed answers on request, the JWKS, the metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc.jwk import KeySet

from tokengate.core import key_sealing
from tokengate.core.introspection_jwt import Expected, verify_response
from tokengate.management.keys import rotate
from tokengate.server import AuthorizationServer, Settings, create_app
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness

pytestmark = pytest.mark.anyio

JWT = "application/token-introspection+jwt"
KEK = key_sealing.parse_kek(key_sealing.new_kek())


class Signing(Harness):
    """A harness whose server signs (it has a key-encryption key)."""

    app: AuthorizationServer

    async def keys(self) -> KeySet:
        return KeySet.import_key_set((await self.http.get("/oauth2/jwks")).json())


@pytest.fixture
async def signing() -> AsyncIterator[Signing]:
    """The app over a memory store, with a KEK: the first start made a key."""
    store, clock = MemoryStore(), FakeClock()
    app = create_app(Settings(issuer=ISSUER, key_encryption_key=KEK), store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        harness = Signing(store, clock, http)
        harness.app = app
        yield harness
    await app.shutdown()


async def _signed(h: Signing, rs_id: str, response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JWT
    assert response.headers["cache-control"] == "no-store"
    return verify_response(response.text, await h.keys(), Expected(ISSUER, rs_id), h.clock.now)


async def test_signed_answer_matches_json(signing: Signing) -> None:
    """§5: `token_introspection` holds exactly the JSON answer; aud is the calling RS."""
    rs = await signing.register(introspect=True)
    app = await signing.register("read")
    token = await signing.issue(app)
    plain = await signing.introspect(rs, token)
    assert plain.headers["content-type"] == "application/json"
    signed = await signing.http.post(
        "/oauth2/introspect", data={"token": token}, headers={**rs.basic(), "Accept": JWT}
    )
    assert await _signed(signing, rs.client_id, signed) == plain.json()


@pytest.mark.parametrize("token", ["not-a-token", "tga_" + "A" * 43], ids=["malformed", "unknown"])
async def test_signed_inactive(signing: Signing, token: str) -> None:
    """An unknown or malformed token is `{"active": false}`, signed too."""
    rs = await signing.register(introspect=True)
    response = await signing.http.post(
        "/oauth2/introspect", data={"token": token}, headers={**rs.basic(), "Accept": JWT}
    )
    assert await _signed(signing, rs.client_id, response) == {"active": False}


async def test_metadata_and_jwks(signing: Signing) -> None:
    """RFC 8414 `jwks_uri` and RFC 9701 §7 algorithms; the JWKS is public and cacheable."""
    meta = (await signing.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["jwks_uri"] == ISSUER + "/oauth2/jwks"
    assert meta["introspection_signing_alg_values_supported"] == ["RS256"]
    jwks = await signing.http.get("/oauth2/jwks")
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    assert jwks.headers["cache-control"] == "public, max-age=300"
    [key] = jwks.json()["keys"]
    assert (key["alg"], key["use"], "d" in key) == ("RS256", "sig", False)


async def test_rotation_publishes_before_signing(signing: Signing) -> None:
    """A rotated key is in the JWKS at once, signs after the delay; the old one then leaves."""
    rs = await signing.register(introspect=True)
    [old] = (await signing.http.get("/oauth2/jwks")).json()["keys"]
    now = int(signing.clock.now)
    new = await rotate(signing.store, KEK, now, "test", grace=60, delay=600, alg="ES256")
    assert signing.app.keys is not None
    await signing.app.keys.refresh()
    kids = [k["kid"] for k in (await signing.http.get("/oauth2/jwks")).json()["keys"]]
    assert kids == [old["kid"], new.kid]

    async def signer() -> str:
        response = await signing.http.post(
            "/oauth2/introspect", data={"token": "x"}, headers={**rs.basic(), "Accept": JWT}
        )
        await _signed(signing, rs.client_id, response)
        return response.text.split(".")[0]  # the header, naming the kid

    before = await signer()
    signing.clock.now = now + 600
    assert await signer() != before
    signing.clock.now = now + 660
    kids = [k["kid"] for k in (await signing.http.get("/oauth2/jwks")).json()["keys"]]
    assert kids == [new.kid]


async def test_without_kek_no_signing(harness: Harness) -> None:
    """No key-encryption key: JSON answers, no jwks_uri, and no JWKS."""
    rs = await harness.register(introspect=True)
    response = await harness.http.post(
        "/oauth2/introspect", data={"token": "x"}, headers={**rs.basic(), "Accept": JWT}
    )
    assert response.headers["content-type"] == "application/json"
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert "jwks_uri" not in meta
    assert (await harness.http.get("/oauth2/jwks")).status_code == 404


async def test_wrong_kek_refuses_to_start() -> None:
    """A replica given another KEK than the one that sealed the key does not start signing."""
    store = MemoryStore()
    first = create_app(Settings(issuer=ISSUER, key_encryption_key=KEK), store)
    await first.startup()
    await first.shutdown()
    other = key_sealing.parse_kek(key_sealing.new_kek())
    second = create_app(Settings(issuer=ISSUER, key_encryption_key=other), store)
    with pytest.raises(key_sealing.KeyUnusable, match="same one"):
        await second.startup()
    await second.shutdown()


async def test_unusable_current_key_is_503(signing: Signing) -> None:
    """A current key this replica cannot open (sealed under another KEK) answers 503."""
    rs = await signing.register(introspect=True)
    other = key_sealing.parse_kek(key_sealing.new_kek())
    now = int(signing.clock.now)
    await signing.store.rotate_signing_key(key_sealing.generate(other, now, delay=1), now + 60)
    signing.clock.now += 1
    assert signing.app.keys is not None
    await signing.app.keys.refresh()
    response = await signing.http.post(
        "/oauth2/introspect", data={"token": "x"}, headers={**rs.basic(), "Accept": JWT}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


async def test_management_api_rotates(signing: Signing) -> None:
    """`POST /admin/api/signing-keys/rotate`: the server seals with its KEK; audited by token."""
    auth = {"Authorization": f"Bearer {await signing.admin_token()}"}
    body = {"grace": 60, "delay": 0, "alg": "ES256"}
    made = await signing.http.post("/admin/api/signing-keys/rotate", json=body, headers=auth)
    assert made.status_code == 201, made.text
    assert (made.json()["alg"], made.json()["state"]) == ("ES256", "pending")
    signing.clock.now += 2  # a rotation's key activates after every stored one: here 1 s on
    listed = (await signing.http.get("/admin/api/signing-keys", headers=auth)).json()
    assert [k["state"] for k in listed["signing_keys"]] == ["published", "signing"]
    [rotated] = [e for e in await signing.store.audit_after() if e.target == made.json()["kid"]]
    assert rotated.actor.startswith("admin-token:")
    for bad in ({"grace": -1}, {"delay": "soon"}, {"alg": "HS256"}, {"grace": True}):
        refused = await signing.http.post("/admin/api/signing-keys/rotate", json=bad, headers=auth)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")


async def test_management_api_without_signing(harness: Harness) -> None:
    """A server that does not sign has no signing keys to list or rotate: 404."""
    auth = {"Authorization": f"Bearer {await harness.admin_token()}"}
    answer = await harness.http.get("/admin/api/signing-keys", headers=auth)
    assert answer.status_code == 404
