"""The management API under `/admin/api`, for the remote CLI and a console. JSON in and out,
an admin token (`tokengate admin-tokens create --admin`) as the Bearer credential.

    GET    /admin/api/clients                      every client, tokens issued in the last
                                                   hour, last issue, secret states
    POST   /admin/api/clients                      create (RFC 7591 metadata) → 201, secret once
    GET    /admin/api/clients/{id}                 one client
    DELETE /admin/api/clients/{id}                 delete → 204
    POST   /admin/api/clients/{id}/rotate-secret   {"grace": seconds} → the new secret, once
    POST   /admin/api/clients/{id}/disable         disable, revoking its tokens
    POST   /admin/api/tokens/revoke                {"token": value} → {"revoked": bool}
    GET    /admin/api/admin-tokens                 every admin token: id, role, dates, state
    POST   /admin/api/admin-tokens                 {"role", "ttl", "name"} → 201, token once
    POST   /admin/api/admin-tokens/{id}/revoke     revoke at once (404 if none or already)
    GET    /admin/api/audit?since=&client_id=&after=&limit=   audit entries, oldest first
    GET    /admin/api/signing-keys                 the RFC 9701 signing keys (public facts, state)
    POST   /admin/api/signing-keys/rotate          {"grace", "delay", "alg"} → 201, the new key

Errors are OAuth-style JSON: 400 `invalid_request` / `invalid_client_metadata`, 401
`invalid_token`, 403 `insufficient_scope`, 404 `not_found`, 405. Every action is audited with
the admin token's public id as the actor.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from tokengate.asgi.body import BodyReader
from tokengate.asgi.types import Receive
from tokengate.core.audit import Action
from tokengate.core.errors import InvalidRequest, MethodNotAllowed, NotFound
from tokengate.core.models import AdminRole
from tokengate.core.registration import parse_metadata
from tokengate.core.responses import Response, json_response
from tokengate.core.signing_keys import (
    ALGORITHMS,
    DEFAULT_ALG,
    DEFAULT_GRACE,
    DEFAULT_PUBLICATION_DELAY,
)
from tokengate.core.wire import ADMIN_API_PATH
from tokengate.management.operations import LocalOperations
from tokengate.management.service import MAX_GRACE, Management
from tokengate.server.admin_auth import AdminGate, json_body
from tokengate.server.signing import KeyRing
from tokengate.storage.base import Store

MAX_AUDIT_PAGE = 1000
MAX_ADMIN_TTL = 366 * 86_400
_NO_CONTENT = Response(204, b"", ((b"cache-control", b"no-store"),))


class AdminApi:
    """Routes `/admin/api/...` requests to `LocalOperations` run by the calling admin token."""

    def __init__(
        self,
        store: Store,
        gate: AdminGate,
        body: BodyReader,
        clock: Callable[[], float] = time.time,
        *,
        on_change: Callable[[], None] = lambda: None,
        keys: KeyRing | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.gate = gate
        self.body = body
        self.clock = clock
        self.on_change = on_change

    async def handle(
        self, method: str, path: str, query: bytes, receive: Receive, headers: dict[str, str]
    ) -> Response:
        """Authenticate the admin token, then dispatch on the path below `/admin/api`."""
        parts = path[len(ADMIN_API_PATH) :].strip("/").split("/")
        route = _route(method, parts)
        token = await self.gate.admin(
            headers, self.clock(), AdminRole.ADMIN, Action.ADMIN_AUTH_FAILED
        )
        ops = LocalOperations(Management(self.store, f"admin-token:{token.token_id}", self.clock))
        request = _Request(ops, parts, query, lambda: json_body(self.body, receive, headers))
        request.keys = self.keys
        response = await route(request)
        if method != "GET":
            self.on_change()
        return response


class _Request:
    """What a route needs: the operations, the path segments, the query, the JSON body."""

    def __init__(
        self,
        ops: LocalOperations,
        parts: list[str],
        query: bytes,
        body: Callable[[], Awaitable[Any]],
    ) -> None:
        self.ops = ops
        self.parts = parts
        self.query = query
        self.body = body
        self.keys: KeyRing | None = None

    async def json_object(self) -> dict[str, Any]:
        document = await self.body()
        if not isinstance(document, dict):
            raise InvalidRequest("the body must be a JSON object")
        return document


Route = Callable[[_Request], Awaitable[Response]]


def _route(method: str, parts: list[str]) -> Route:
    """The handler for this method and path shape; 404 / 405 before any authentication work."""
    shapes: dict[tuple[str, ...], dict[str, Route]] = {
        ("clients",): {"GET": _list, "POST": _create},
        ("clients", "*"): {"GET": _show, "DELETE": _delete},
        ("clients", "*", "rotate-secret"): {"POST": _rotate},
        ("clients", "*", "disable"): {"POST": _disable},
        ("tokens", "revoke"): {"POST": _revoke},
        ("admin-tokens",): {"GET": _admin_tokens, "POST": _admin_token},
        ("admin-tokens", "*", "revoke"): {"POST": _revoke_admin_token},
        ("audit",): {"GET": _audit},
        ("signing-keys",): {"GET": _signing_keys},
        ("signing-keys", "rotate"): {"POST": _rotate_signing_key},
    }
    named = parts[0] in ("clients", "admin-tokens")  # the second segment is an id
    shape = tuple("*" if i == 1 and named else p for i, p in enumerate(parts))
    handlers = shapes.get(shape)
    if handlers is None or (len(parts) > 1 and named and not parts[1]):
        raise NotFound("no such management resource")
    handler = handlers.get(method)
    if handler is None:
        allow = ", ".join(sorted(handlers))
        raise MethodNotAllowed(f"use {allow}", headers={"Allow": allow})
    return handler


async def _list(request: _Request) -> Response:
    return json_response(200, {"clients": await request.ops.list_clients()})


async def _create(request: _Request) -> Response:
    metadata = parse_metadata(await request.json_object(), may_introspect=True)
    return json_response(201, await request.ops.create_client(metadata))


async def _show(request: _Request) -> Response:
    found = await request.ops.show_client(request.parts[1])
    if found is None:
        raise NotFound("no such client")
    return json_response(200, found)


async def _delete(request: _Request) -> Response:
    if not await request.ops.delete_client(request.parts[1]):
        raise NotFound("no such client")
    return _NO_CONTENT


async def _rotate(request: _Request) -> Response:
    grace = (await request.json_object()).get("grace", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= MAX_GRACE:
        raise InvalidRequest(f"grace must be an integer from 0 to {MAX_GRACE}")
    rotated = await request.ops.rotate_secret(request.parts[1], grace)
    if rotated is None:
        raise NotFound("no such client")
    return json_response(200, rotated)


async def _disable(request: _Request) -> Response:
    if not await request.ops.disable_client(request.parts[1]):
        raise NotFound("no such client")
    return json_response(200, {"client_id": request.parts[1], "disabled": True})


async def _revoke(request: _Request) -> Response:
    token = (await request.json_object()).get("token")
    if not isinstance(token, str) or not 0 < len(token) <= 512:
        raise InvalidRequest("token must be a non-empty string")
    return json_response(200, {"revoked": await request.ops.revoke_token(token)})


async def _admin_token(request: _Request) -> Response:
    document = await request.json_object()
    role, ttl, name = document.get("role"), document.get("ttl", 86_400), document.get("name", "")
    if role not in ("register", "admin"):
        raise InvalidRequest('role must be "register" or "admin"')
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_ADMIN_TTL:
        raise InvalidRequest(f"ttl must be an integer from 1 to {MAX_ADMIN_TTL}")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidRequest("name must be a string of at most 200 characters")
    made = await request.ops.create_admin_token(AdminRole(role), ttl, name)
    return json_response(201, made)


async def _admin_tokens(request: _Request) -> Response:
    return json_response(200, {"admin_tokens": await request.ops.list_admin_tokens()})


async def _revoke_admin_token(request: _Request) -> Response:
    if not await request.ops.revoke_admin_token(request.parts[1]):
        raise NotFound("no such admin token, or already revoked")
    return json_response(200, {"token_id": request.parts[1], "revoked": True})


async def _audit(request: _Request) -> Response:
    try:
        raw = request.query.decode("ascii")
        query = parse_qs(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("malformed query") from None
    if any(len(v) > 1 for v in query.values()) or set(query) - {
        "since",
        "client_id",
        "after",
        "limit",
    }:
        raise InvalidRequest("query parameters: since, client_id, after, limit (once each)")
    since, after = _int(query, "since", 0), _int(query, "after", 0)
    limit = min(_int(query, "limit", MAX_AUDIT_PAGE), MAX_AUDIT_PAGE)
    client_id = query.get("client_id", [None])[0]
    entries = await request.ops.audit(since, client_id, after, limit)
    return json_response(200, {"entries": entries})


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if values is None:
        return default
    if not values[0].isdigit() or len(values[0]) > 15:
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return int(values[0])


def _key_ring(request: _Request) -> KeyRing:
    if request.keys is None:
        raise NotFound("this server does not sign (no key-encryption key)")
    return request.keys


async def _signing_keys(request: _Request) -> Response:
    return json_response(200, {"signing_keys": _key_ring(request).views()})


async def _rotate_signing_key(request: _Request) -> Response:
    keys = _key_ring(request)
    body = await request.json_object()
    grace, delay = body.get("grace", DEFAULT_GRACE), body.get("delay", DEFAULT_PUBLICATION_DELAY)
    alg = body.get("alg", DEFAULT_ALG)
    for name, value in (("grace", grace), ("delay", delay)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_GRACE:
            raise InvalidRequest(f"{name} must be an integer from 0 to {MAX_GRACE}")
    if alg not in ALGORITHMS:
        raise InvalidRequest(f"alg must be one of {', '.join(ALGORITHMS)}")
    actor = request.ops.management.actor
    key = await keys.rotate(actor, grace=grace, delay=delay, alg=alg)
    made = next(v for v in keys.views() if v["kid"] == key.kid)
    return json_response(201, made)
