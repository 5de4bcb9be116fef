"""The management API in process: every route a console needs, and every error path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tokengate.core.models import AdminRole

from .conftest import Harness

pytestmark = pytest.mark.anyio
API = "/admin/api"


async def admin(harness: Harness) -> dict[str, str]:
    """Headers with a fresh admin token."""
    return {"Authorization": f"Bearer {await harness.admin_token(AdminRole.ADMIN)}"}


async def call(
    harness: Harness, method: str, path: str, json: Any = None, **kwargs: Any
) -> httpx.Response:
    """A management call with a fresh admin token."""
    return await harness.http.request(
        method, API + path, json=json, headers=await admin(harness), **kwargs
    )


async def test_create_list_show_rotate_disable_delete(harness: Harness) -> None:
    """The console's flow: create (secret once), list with activity, rotate with grace (both
    states shown), disable, delete; each answer as documented."""
    created = await call(harness, "POST", "/clients", {"client_name": "svc", "scope": "read"})
    assert created.status_code == 201
    cid, secret = created.json()["client_id"], created.json()["client_secret"]
    await harness.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=(cid, secret))  # fmt: skip
    [row] = (await call(harness, "GET", "/clients")).json()["clients"]
    assert (row["client_id"], row["tokens_issued_last_hour"]) == (cid, 1)
    assert row["last_token_issued_at"] == int(harness.clock.now)
    rotated = await call(harness, "POST", f"/clients/{cid}/rotate-secret", {"grace": 30})
    assert rotated.status_code == 200
    assert rotated.json()["client_secret"] != secret
    shown = (await call(harness, "GET", f"/clients/{cid}")).json()
    assert [s["secret"] for s in shown["secrets"]] == ["current", "previous"]
    assert shown["secrets"][1]["valid_until"] == int(harness.clock.now) + 30
    disabled = await call(harness, "POST", f"/clients/{cid}/disable")
    assert disabled.json() == {"client_id": cid, "disabled": True}
    assert (await call(harness, "DELETE", f"/clients/{cid}")).status_code == 204
    assert (await call(harness, "GET", f"/clients/{cid}")).status_code == 404


async def test_revoke_a_token_by_value_and_read_the_audit_log(harness: Harness) -> None:
    """Revocation by value answers whether it revoked; the audit log names it by digest only,
    filters by client and time, and pages by position."""
    who = await harness.register()
    token = await harness.issue(who)
    assert (await call(harness, "POST", "/tokens/revoke", {"token": token})).json() == {
        "revoked": True
    }
    assert (await call(harness, "POST", "/tokens/revoke", {"token": token})).json() == {
        "revoked": False
    }
    entries = (await call(harness, "GET", "/audit")).json()["entries"]
    revoked = [e for e in entries if e["action"] == "token_revoked"]
    assert [e["outcome"] for e in revoked] == ["ok", "not_found"]
    assert revoked[0]["client_id"] == who.client_id
    assert token not in str(entries)
    mine = (await call(harness, "GET", "/audit", params={"client_id": who.client_id})).json()
    assert [e["action"] for e in mine["entries"]] == ["token_revoked"]
    later = await call(harness, "GET", "/audit", params={"since": int(harness.clock.now) + 1})
    assert later.json()["entries"] == []
    page = await call(
        harness, "GET", "/audit", params={"after": entries[0]["position"], "limit": 1}
    )
    assert page.json()["entries"] == entries[1:2]


async def test_admin_tokens_can_be_minted_through_the_api(harness: Harness) -> None:
    """POST /admin-tokens makes an initial access token that can register."""
    made = await call(harness, "POST", "/admin-tokens", {"role": "register", "ttl": 60})
    assert made.status_code == 201
    token = made.json()["initial_access_token"]
    registered = await harness.http.post(
        "/oauth2/register", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert registered.status_code == 201


async def test_admin_tokens_are_listed_and_revoked_at_once(harness: Harness) -> None:
    """GET /admin-tokens lists ids and states, never a value; revoking one refuses it on the
    next request (401), a second revoke or an unknown id is 404; both are audited."""
    made = (await call(harness, "POST", "/admin-tokens", {"role": "admin", "name": "ci"})).json()
    value, token_id = made["admin_token"], made["token_id"]
    headers = {"Authorization": f"Bearer {value}"}
    assert (await harness.http.get(API + "/clients", headers=headers)).status_code == 200
    listed = (await call(harness, "GET", "/admin-tokens")).json()["admin_tokens"]
    mine = next(t for t in listed if t["token_id"] == token_id)
    assert (mine["role"], mine["name"], mine["state"], mine["revoked_at"]) == (
        "admin",
        "ci",
        "active",
        None,
    )
    assert value not in str(listed)
    revoked = await call(harness, "POST", f"/admin-tokens/{token_id}/revoke")
    assert revoked.json() == {"token_id": token_id, "revoked": True}
    assert (await harness.http.get(API + "/clients", headers=headers)).status_code == 401
    again = await call(harness, "POST", f"/admin-tokens/{token_id}/revoke")
    assert (again.status_code, again.json()["error"]) == (404, "not_found")
    unknown = await call(harness, "POST", "/admin-tokens/tgadmid_nope/revoke")
    assert unknown.status_code == 404
    listed = (await call(harness, "GET", "/admin-tokens")).json()["admin_tokens"]
    mine = next(t for t in listed if t["token_id"] == token_id)
    assert (mine["state"], mine["revoked_at"]) == ("revoked", int(harness.clock.now))
    register_only = {"Authorization": f"Bearer {await harness.admin_token(AdminRole.REGISTER)}"}
    for method, path in (("GET", "/admin-tokens"), ("POST", f"/admin-tokens/{token_id}/revoke")):
        refused = await harness.http.request(method, API + path, headers=register_only)
        assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
    notes = [
        e for e in await harness.store.audit_after(0) if e.action.value == "admin_token_revoked"
    ]
    assert [(e.target, e.outcome.value) for e in notes] == [
        (token_id, "ok"), (token_id, "not_found"), ("tgadmid_nope", "not_found")
    ]  # fmt: skip


async def test_api_needs_an_admin_token(harness: Harness) -> None:
    """No token, a wrong one: 401; an initial access token (register role): 403; audited."""
    assert (await harness.http.get(API + "/clients")).status_code == 401
    wrong = {"Authorization": "Bearer tgadm_wrong"}
    assert (await harness.http.get(API + "/clients", headers=wrong)).status_code == 401
    register_only = await harness.admin_token(AdminRole.REGISTER)
    response = await harness.http.get(
        API + "/clients", headers={"Authorization": f"Bearer {register_only}"}
    )
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")
    actions = {e.action.value for e in await harness.store.audit_after(0)}
    assert "admin_auth_failed" in actions


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        pytest.param("GET", "/nope", None, 404, "not_found", id="unknown-path"),
        pytest.param("GET", "", None, 404, "not_found", id="root"),
        pytest.param("GET", "/clients//disable", None, 404, "not_found", id="empty-id"),
        pytest.param("PUT", "/clients", {}, 405, "invalid_request", id="method"),
        pytest.param("GET", "/clients/tgc_x", None, 404, "not_found", id="unknown-client"),
        pytest.param("DELETE", "/clients/tgc_x", None, 404, "not_found", id="delete-unknown"),
        pytest.param("POST", "/clients/tgc_x/disable", None, 404, "not_found",
                     id="disable-unknown"),
        pytest.param("POST", "/clients/tgc_x/rotate-secret", {"grace": 1}, 404, "not_found",
                     id="rotate-unknown"),
        pytest.param("POST", "/clients/tgc_x/rotate-secret", {"grace": -1}, 400,
                     "invalid_request", id="grace-negative"),
        pytest.param("POST", "/clients/tgc_x/rotate-secret", {"grace": "1"}, 400,
                     "invalid_request", id="grace-type"),
        pytest.param("POST", "/clients/tgc_x/rotate-secret", [], 400, "invalid_request",
                     id="body-array"),
        pytest.param("POST", "/clients", {"scope": 1}, 400, "invalid_client_metadata",
                     id="bad-metadata"),
        pytest.param("POST", "/tokens/revoke", {}, 400, "invalid_request", id="revoke-no-token"),
        pytest.param("POST", "/admin-tokens", {"role": "root"}, 400, "invalid_request",
                     id="role"),
        pytest.param("POST", "/admin-tokens", {"role": "admin", "ttl": 0}, 400,
                     "invalid_request", id="ttl"),
        pytest.param("POST", "/admin-tokens", {"role": "admin", "name": 3}, 400,
                     "invalid_request", id="name"),
    ],
)  # fmt: skip
async def test_error_paths(
    harness: Harness, method: str, path: str, body: Any, status: int, error: str
) -> None:
    """Each bad request gets its documented status and OAuth-style error code."""
    response = await call(harness, method, path, body)
    assert (response.status_code, response.json()["error"]) == (status, error)


@pytest.mark.parametrize(
    "query",
    [
        "since=x",
        "limit=-1",
        "since=1&since=2",
        "bogus=1",
        "bogus=",
        "since=",
        "since",
        "%ff=1",
        "after=" + "9" * 20,
    ],
)
async def test_bad_audit_queries_are_400(harness: Harness, query: str) -> None:
    """A malformed, repeated or unknown audit query parameter is invalid_request."""
    response = await harness.http.get(f"{API}/audit?{query}", headers=await admin(harness))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_body_must_be_json(harness: Harness) -> None:
    """A form body is 415; broken JSON is 400."""
    headers = await admin(harness)
    form = await harness.http.post(API + "/tokens/revoke", data={"token": "x"}, headers=headers)
    assert form.status_code == 415
    broken = await harness.http.post(
        API + "/tokens/revoke", content=b"{", headers=headers | {"Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_request")
