"""The OpenAPI document: valid, served, and describing what the server really answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tokengate.core.models import AdminRole
from tokengate.core.wire import METADATA_PATH
from tokengate.server.app import AuthorizationServer, openapi_document

from .conftest import ISSUER, Harness

pytestmark = pytest.mark.anyio
DOC: dict[str, Any] = json.loads(openapi_document())


def _schema(path: str, method: str, status: int) -> dict[str, Any]:
    response = DOC["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": DOC["components"]}  # let local $refs resolve


def _check(path: str, method: str, status: int, body: Any) -> None:
    Draft202012Validator(_schema(path, method, status)).validate(body)


def test_document_is_valid_openapi() -> None:
    """openapi-spec-validator accepts the document."""
    validate(DOC)


def test_every_route_is_documented() -> None:
    """Every path the server routes appears in the document."""
    app = AuthorizationServer.__new__(AuthorizationServer)
    documented = set(DOC["paths"])
    assert {
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/oauth2/events",
        "/oauth2/jwks",
        METADATA_PATH,
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/oauth2/register",
        "/oauth2/register/{client_id}",
        "/admin/api/clients",
        "/admin/api/clients/{client_id}",
        "/admin/api/clients/{client_id}/rotate-secret",
        "/admin/api/clients/{client_id}/disable",
        "/admin/api/tokens/revoke",
        "/admin/api/admin-tokens",
        "/admin/api/audit",
    } <= documented
    assert app is not None


async def test_served(harness: Harness) -> None:
    """GET /openapi.json serves the same document."""
    response = await harness.http.get("/openapi.json")
    assert response.json() == DOC


async def test_responses_match_schemas(harness: Harness) -> None:
    """Real responses of the main flows validate against their documented schemas."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    issued = await harness.token(client)
    _check("/oauth2/token", "post", 200, issued.json())
    token = issued.json()["access_token"]
    _check("/oauth2/introspect", "post", 200, (await harness.introspect(rs, token)).json())
    bad = await harness.token(client, scope="nope")
    _check("/oauth2/token", "post", 400, bad.json())
    unauth = await harness.http.post("/oauth2/introspect", data={"token": token})
    _check("/oauth2/introspect", "post", 401, unauth.json())
    await harness.http.post("/oauth2/revoke", data={"token": token}, headers=client.basic())
    _check("/oauth2/introspect", "post", 200, (await harness.introspect(rs, token)).json())
    _check(METADATA_PATH, "get", 200, (await harness.http.get(METADATA_PATH)).json())


async def test_management_answers_match_the_document(harness: Harness) -> None:
    """Registration, RFC 7592 read, and the management API's answers fit their schemas."""
    admin = {"Authorization": f"Bearer {await harness.admin_token(AdminRole.ADMIN)}"}
    registered = await harness.http.post("/oauth2/register", json={"scope": "read"}, headers=admin)
    _check("/oauth2/register", "post", 201, registered.json())
    answer = registered.json()
    read = await harness.http.get(
        answer["registration_client_uri"].removeprefix(ISSUER),
        headers={"Authorization": f"Bearer {answer['registration_access_token']}"},
    )
    _check("/oauth2/register/{client_id}", "get", 200, read.json())
    cid = answer["client_id"]
    rotated = await harness.http.post(
        f"/admin/api/clients/{cid}/rotate-secret", json={"grace": 9}, headers=admin
    )
    _check("/admin/api/clients/{client_id}/rotate-secret", "post", 200, rotated.json())
    listed = await harness.http.get("/admin/api/clients", headers=admin)
    _check("/admin/api/clients", "get", 200, listed.json())
    shown = await harness.http.get(f"/admin/api/clients/{cid}", headers=admin)
    _check("/admin/api/clients/{client_id}", "get", 200, shown.json())
    audit = await harness.http.get("/admin/api/audit", headers=admin)
    _check("/admin/api/audit", "get", 200, audit.json())
    refused = await harness.http.post("/oauth2/register", json={"redirect_uris": ["https://x"]},
                                      headers=admin)  # fmt: skip
    _check("/oauth2/register", "post", 400, refused.json())
