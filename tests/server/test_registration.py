"""RFC 7591 registration and RFC 7592 client configuration, in process: the happy paths and
every error path (status, error code, challenge)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tokengate.core.models import AdminRole

from .conftest import ISSUER, Harness

pytestmark = pytest.mark.anyio
REGISTER = "/oauth2/register"


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


async def register(harness: Harness, body: Any, token: str | None = None) -> httpx.Response:
    """POST a registration with an initial access token (a fresh one unless given)."""
    token = token or await harness.admin_token(AdminRole.REGISTER)
    return await harness.http.post(REGISTER, json=body, headers=bearer(token))


async def registered(harness: Harness, **body: Any) -> dict[str, Any]:
    """A successful registration's answer."""
    response = await register(harness, {"client_name": "dyn", "scope": "read", **body})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def path_of(answer: dict[str, Any]) -> str:
    """The registration_client_uri, as a path on the test server."""
    uri: str = answer["registration_client_uri"]
    assert uri.startswith(ISSUER)
    return uri.removeprefix(ISSUER)


async def test_metadata_advertises_the_registration_endpoint(harness: Harness) -> None:
    """RFC 8414 §2 / RFC 7591 §3: `registration_endpoint`."""
    body = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert body["registration_endpoint"] == ISSUER + REGISTER


async def test_registration_answers_201_with_the_client_information(harness: Harness) -> None:
    """§3.2.1: id, secret, issue time, secret expiry 0, the metadata, and RFC 7592's token and
    URI; the client can then get tokens; the audit log names the initial access token."""
    answer = await registered(harness, tokengate_token_ttl=60)
    assert answer["client_id"].startswith("tgc_")
    assert answer["client_secret"].startswith("tgcs_")
    assert answer["client_secret_expires_at"] == 0
    assert answer["client_id_issued_at"] == int(harness.clock.now)
    assert answer["registration_access_token"].startswith("tgrat_")
    assert answer["registration_client_uri"] == f"{ISSUER}{REGISTER}/{answer['client_id']}"
    assert (answer["scope"], answer["tokengate_token_ttl"]) == ("read", 60)
    token = await harness.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"},
        auth=(answer["client_id"], answer["client_secret"]),
    )  # fmt: skip
    assert token.json()["expires_in"] == 60
    [entry] = [
        e for e in await harness.store.audit_after(0) if e.action.value == "client_registered"
    ]
    assert entry.actor.startswith("admin-token:tgadmid_")


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        pytest.param({}, 'Bearer realm="tokengate"', id="none"),
        pytest.param({"Authorization": "Basic eDp5"}, "invalid_token", id="basic"),
        pytest.param({"Authorization": "Bearer tgadm_nope"}, "invalid_token", id="unknown"),
        pytest.param({"Authorization": "Bearer "}, "invalid_token", id="empty"),
        pytest.param({"Authorization": "Bearer " + "a" * 600}, "invalid_token", id="long"),
    ],
)
async def test_registration_without_a_valid_token_is_401(
    harness: Harness, headers: dict[str, str], challenge: str
) -> None:
    """§3: never open; RFC 6750 §3.1 challenge (no error code when no token was sent); the
    refusal is audited."""
    response = await harness.http.post(REGISTER, json={}, headers=headers)
    assert response.status_code == 401
    assert challenge in response.headers["www-authenticate"]
    assert await harness.store.list_clients() == []
    [entry] = await harness.store.audit_after(0)
    assert (entry.action.value, entry.outcome.value) == ("registration_refused", "refused")


async def test_expired_initial_access_token_is_401(harness: Harness) -> None:
    """An initial access token works until its TTL, then not."""
    token = await harness.admin_token(AdminRole.REGISTER, ttl=10)
    assert (await register(harness, {}, token)).status_code == 201
    harness.clock.now += 10
    assert (await register(harness, {}, token)).status_code == 401


async def test_introspection_needs_an_admin_token(harness: Harness) -> None:
    """An initial access token cannot register an introspecting client; an admin one can."""
    refused = await register(harness, {"tokengate_introspect": True})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")
    admin = await harness.admin_token(AdminRole.ADMIN)
    assert (await register(harness, {"tokengate_introspect": True}, admin)).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        pytest.param(b"{", "application/json", 400, "invalid_request", id="not-json"),
        pytest.param(b"[]", "application/json", 400, "invalid_client_metadata", id="array"),
        pytest.param(b"{}", "text/plain", 415, "invalid_request", id="media-type"),
        pytest.param(b'{"redirect_uris":["https://x"]}', "application/json", 400,
                     "invalid_redirect_uri", id="redirect"),
        pytest.param(b'{"software_statement":"x"}', "application/json", 400,
                     "invalid_software_statement", id="statement"),
        pytest.param(b'{"grant_types":["password"]}', "application/json", 400,
                     "invalid_client_metadata", id="grant"),
        pytest.param(b"{" + b'"a":1,' * 5000 + b'"b":1}', "application/json", 413,
                     "invalid_request", id="too-large"),
    ],
)  # fmt: skip
async def test_bad_registration_requests(
    harness: Harness, body: bytes, content_type: str, status: int, error: str
) -> None:
    """§3.2.2 codes for bad metadata; 400/413/415 for a body that is not a JSON object."""
    token = await harness.admin_token(AdminRole.REGISTER)
    headers = bearer(token) | {"Content-Type": content_type}
    response = await harness.http.post(REGISTER, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, error)


async def test_read_returns_the_client_and_rotates_the_registration_token(
    harness: Harness,
) -> None:
    """RFC 7592 §2.1: the information, with a new registration access token; the old one
    stops at once; no client secret is ever shown again."""
    answer = await registered(harness)
    first = answer["registration_access_token"]
    read = await harness.http.get(path_of(answer), headers=bearer(first))
    assert read.status_code == 200
    body = read.json()
    assert body["client_id"] == answer["client_id"]
    assert "client_secret" not in body
    assert body["registration_access_token"] not in (first, None)
    assert (await harness.http.get(path_of(answer), headers=bearer(first))).status_code == 401
    again = await harness.http.get(
        path_of(answer), headers=bearer(body["registration_access_token"])
    )
    assert again.status_code == 200


async def test_update_replaces_metadata_and_rotates_the_token(harness: Harness) -> None:
    """§2.2: PUT the full document; the answer carries the new metadata and a new token."""
    answer = await registered(harness)
    document = {k: v for k, v in answer.items() if k not in _SERVER_ONLY}
    document |= {"scope": "read write", "client_name": "renamed"}
    response = await harness.http.put(
        path_of(answer), json=document, headers=bearer(answer["registration_access_token"])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scope"], body["client_name"]) == ("read write", "renamed")
    stored = await harness.store.get_client(answer["client_id"])
    assert stored is not None
    assert stored.scopes == frozenset({"read", "write"})


_SERVER_ONLY = ("registration_access_token", "registration_client_uri",
                "client_secret_expires_at", "client_id_issued_at")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"client_id": "tgc_other"}, 400, "invalid_request", id="other-id"),
        pytest.param({"client_id": None}, 400, "invalid_request", id="no-id"),
        pytest.param({"registration_access_token": "x"}, 400, "invalid_request", id="token"),
        pytest.param({"client_id_issued_at": 1}, 400, "invalid_request", id="issued-at"),
        pytest.param({"client_secret": "tgcs_wrong"}, 400, "invalid_client_metadata",
                     id="wrong-secret"),
        pytest.param({"tokengate_introspect": True}, 400, "invalid_client_metadata",
                     id="gain-introspection"),
        pytest.param({"tokengate_token_ttl": -1}, 400, "invalid_client_metadata", id="ttl"),
    ],
)  # fmt: skip
async def test_bad_updates_are_refused(
    harness: Harness, change: dict[str, Any], status: int, error: str
) -> None:
    """§2.2: the client id must match, server-only members must be absent, a client_secret
    must be the current one, and no permission can be gained."""
    answer = await registered(harness)
    document = {k: v for k, v in answer.items() if k not in _SERVER_ONLY} | change
    document = {k: v for k, v in document.items() if v is not None}
    response = await harness.http.put(
        path_of(answer), json=document, headers=bearer(answer["registration_access_token"])
    )
    assert (response.status_code, response.json()["error"]) == (status, error)


async def test_update_with_the_current_secret_is_accepted(harness: Harness) -> None:
    """§2.2: a client_secret equal to the current one is allowed in an update."""
    answer = await registered(harness)
    document = {k: v for k, v in answer.items() if k not in _SERVER_ONLY}
    response = await harness.http.put(
        path_of(answer), json=document, headers=bearer(answer["registration_access_token"])
    )
    assert response.status_code == 200


async def test_delete_answers_204_and_ends_the_client(harness: Harness) -> None:
    """§2.3: 204; the client and its registration token are gone (401 afterwards)."""
    answer = await registered(harness)
    token = answer["registration_access_token"]
    response = await harness.http.delete(path_of(answer), headers=bearer(token))
    assert (response.status_code, response.content) == (204, b"")
    assert await harness.store.get_client(answer["client_id"]) is None
    assert (await harness.http.get(path_of(answer), headers=bearer(token))).status_code == 401


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_configuration_endpoint_refuses_wrong_tokens(harness: Harness, method: str) -> None:
    """§2: wrong token, another client's token, unknown client, disabled client: all 401."""
    mine, other = await registered(harness), await registered(harness)
    attempts = [
        (path_of(mine), "tgrat_wrong"),
        (path_of(mine), other["registration_access_token"]),
        (f"{REGISTER}/tgc_nobody", mine["registration_access_token"]),
    ]
    for path, token in attempts:
        response = await harness.http.request(method, path, json={}, headers=bearer(token))
        assert response.status_code == 401
        assert "invalid_token" in response.headers["www-authenticate"]
    await harness.store.disable_client(mine["client_id"], 0)
    token = mine["registration_access_token"]
    response = await harness.http.request(method, path_of(mine), json={}, headers=bearer(token))
    assert response.status_code == 401


async def test_configuration_endpoint_refuses_other_methods(harness: Harness) -> None:
    """POST or PATCH on a client URI is 405 with Allow; a nested path is 404."""
    answer = await registered(harness)
    response = await harness.http.post(path_of(answer), json={})
    assert (response.status_code, response.headers["allow"]) == (405, "DELETE, GET, PUT")
    assert (await harness.http.get(path_of(answer) + "/x")).status_code == 404
    assert (await harness.http.get(REGISTER)).status_code == 405
