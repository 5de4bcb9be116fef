"""`Operations` over a server's management API (`/admin/api`): what `--server URL` drives.

Every call has a timeout; an error answer becomes a `click.ClickException` naming the server's
`error` and `error_description` (never the admin token). A 404 is "no such client" (None or
False), like the database path.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import click
import httpx

from tokengate.core.models import AdminRole
from tokengate.core.registration import AUDIENCES, DPOP_BOUND, INTROSPECT, TOKEN_TTL, ClientMetadata
from tokengate.core.scopes import format_scope
from tokengate.core.wire import ADMIN_API_PATH

Document = dict[str, Any]
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class RemoteOperations:
    """The management API as `Operations`; use as an async context manager."""

    def __init__(self, server: str, admin_token: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=server.rstrip("/") + ADMIN_API_PATH,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=TIMEOUT,
            follow_redirects=False,
        )

    async def __aenter__(self) -> RemoteOperations:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"server unreachable: {type(exc).__name__}") from None
        if response.status_code == 404 and path.startswith("/clients/"):
            return None
        if response.status_code >= 400:
            raise click.ClickException(_describe(response))
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        return None if response is None else response.json()

    async def create_client(self, metadata: ClientMetadata) -> Document:
        body: dict[str, Any] = {
            "client_name": metadata.name, "scope": format_scope(metadata.scopes),
            AUDIENCES: list(metadata.audiences), INTROSPECT: metadata.can_introspect,
            TOKEN_TTL: metadata.token_ttl, "token_endpoint_auth_method": metadata.auth_method,
            DPOP_BOUND: metadata.dpop_bound,
        }  # fmt: skip
        if metadata.jwks is not None:
            body["jwks"] = json.loads(metadata.jwks)
        if metadata.jwks_uri is not None:
            body["jwks_uri"] = metadata.jwks_uri
        made: Document = await self._json("POST", "/clients", json=body)
        return made

    async def list_clients(self) -> list[Document]:
        listed: list[Document] = (await self._json("GET", "/clients"))["clients"]
        return listed

    async def show_client(self, client_id: str) -> Document | None:
        found: Document | None = await self._json("GET", f"/clients/{_segment(client_id)}")
        return found

    async def rotate_secret(self, client_id: str, grace: int) -> Document | None:
        path = f"/clients/{_segment(client_id)}/rotate-secret"
        rotated: Document | None = await self._json("POST", path, json={"grace": grace})
        return rotated

    async def disable_client(self, client_id: str) -> bool:
        path = f"/clients/{_segment(client_id)}/disable"
        return await self._call("POST", path, json={}) is not None

    async def delete_client(self, client_id: str) -> bool:
        return await self._call("DELETE", f"/clients/{_segment(client_id)}") is not None

    async def revoke_token(self, token: str) -> bool:
        return bool((await self._json("POST", "/tokens/revoke", json={"token": token}))["revoked"])

    async def create_admin_token(self, role: AdminRole, ttl: int, name: str) -> Document:
        body = {"role": role.value, "ttl": ttl, "name": name}
        made: Document = await self._json("POST", "/admin-tokens", json=body)
        return made

    async def list_admin_tokens(self) -> list[Document]:
        tokens: list[Document] = (await self._json("GET", "/admin-tokens"))["admin_tokens"]
        return tokens

    async def revoke_admin_token(self, token_id: str) -> bool:
        path = f"/admin-tokens/{_segment(token_id)}/revoke"
        return await self._call("POST", path) is not None

    async def audit(
        self, since: int = 0, client_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Document]:
        params: dict[str, str | int] = {"since": since, "after": after, "limit": limit}
        if client_id is not None:
            params["client_id"] = client_id
        entries: list[Document] = (await self._json("GET", "/audit", params=params))["entries"]
        return entries

    async def list_signing_keys(self) -> list[Document]:
        """`GET /signing-keys`: the server's RFC 9701 keys."""
        listed: list[Document] = (await self._json("GET", "/signing-keys"))["signing_keys"]
        return listed

    async def rotate_signing_key(self, grace: int, delay: int, alg: str) -> Document:
        """`POST /signing-keys/rotate`: the server seals the new key with its own KEK."""
        body = {"grace": grace, "delay": delay, "alg": alg}
        made: Document = await self._json("POST", "/signing-keys/rotate", json=body)
        return made


def _segment(value: str) -> str:
    """A client id as one path segment (ids are `tgc_` + hex or operator-chosen)."""
    return httpx.URL("/" + value).raw_path.decode("ascii").lstrip("/").replace("/", "%2F")


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error", "error") if isinstance(body, dict) else "error"
    detail = body.get("error_description", "") if isinstance(body, dict) else ""
    return f"server answered {response.status_code} {error}: {detail}".rstrip(": ")
