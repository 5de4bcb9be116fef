"""RFC 7009 revocation at POST /oauth2/revoke."""

from __future__ import annotations

import pytest

from tokengate.core.credentials import new_access_token

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def test_owner_revokes(harness: Harness) -> None:
    """§2.2: 200 and the token is inactive from then on, with an event recorded."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    response = await harness.http.post(
        "/oauth2/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        headers=client.basic(),
    )
    assert response.status_code == 200
    assert (await harness.introspect(rs, token)).json() == {"active": False}
    events = await harness.store.events_after(0)
    assert [e.kind.value for e in events] == ["token_revoked"]
    assert token not in repr(events)


@pytest.mark.parametrize("token", [new_access_token(), "garbage", "x" * 500])
async def test_unknown_token_is_200(harness: Harness, token: str) -> None:
    """§2.2: invalid tokens do not cause an error response."""
    client = await harness.register()
    response = await harness.http.post(
        "/oauth2/revoke", data={"token": token}, headers=client.basic()
    )
    assert response.status_code == 200


async def test_other_clients_token_untouched(harness: Harness) -> None:
    """Documented rule: revoking another client's token answers 200 and changes nothing."""
    owner = await harness.register()
    other = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(owner)
    response = await harness.http.post(
        "/oauth2/revoke", data={"token": token}, headers=other.basic()
    )
    assert response.status_code == 200
    assert (await harness.introspect(rs, token)).json()["active"] is True


async def test_unknown_hint_ignored(harness: Harness) -> None:
    """§2.2.1: an unknown hint is ignored and the token is still revoked."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    await harness.http.post(
        "/oauth2/revoke", data={"token": token, "token_type_hint": "weird"}, headers=client.basic()
    )
    assert (await harness.introspect(rs, token)).json() == {"active": False}


async def test_revocation_requires_client_auth(harness: Harness) -> None:
    """§2.1: the client authenticates."""
    response = await harness.http.post("/oauth2/revoke", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_missing_token(harness: Harness) -> None:
    """§2.1: `token` is required."""
    client = await harness.register()
    response = await harness.http.post("/oauth2/revoke", data={}, headers=client.basic())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
