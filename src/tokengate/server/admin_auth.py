"""Bearer credentials of the registration and management endpoints (RFC 6750 §2.1, §3.1),
and their JSON bodies.

An admin token (RFC 7591 §3 initial access token, or a management token) and a registration
access token (RFC 7592 §1.2) are looked up by their SHA-256 digest and compared in constant
time; a missing, malformed, unknown, expired or revoked one is `invalid_token` (401 with a
`Bearer` challenge; no error code when none was sent), a valid one of too small a role
`insufficient_scope` (403). Refusals are audited (at most once a window, `SecurityEvents`).
"""

from __future__ import annotations

from typing import Any

import orjson

from tokengate.asgi.body import BodyReader
from tokengate.asgi.types import Receive
from tokengate.core.audit import Action
from tokengate.core.challenge import bearer_challenge
from tokengate.core.credentials import hash_value, verify_secret
from tokengate.core.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UnsupportedMediaType,
)
from tokengate.core.models import AdminRole, AdminToken, Client
from tokengate.server.audit_log import SecurityEvents
from tokengate.server.request_headers import PEER
from tokengate.storage.base import Store

JSON_MEDIA_TYPE = "application/json"
MAX_TOKEN_LENGTH = 512


def bearer_token(headers: dict[str, str], realm: str) -> str:
    """The `Authorization: Bearer` credential; `invalid_token` (or a bare challenge) else."""
    value = headers.get("authorization")
    if value is None:
        raise InvalidToken(
            "bearer token required", headers={"WWW-Authenticate": bearer_challenge(realm)}
        )
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid_token(realm)
    return token


def invalid_token(realm: str) -> InvalidToken:
    """RFC 6750 §3.1 `invalid_token` with its challenge."""
    description = "the bearer token is invalid, expired or revoked"
    challenge = bearer_challenge(realm, "invalid_token", description)
    return InvalidToken(description, headers={"WWW-Authenticate": challenge})


class AdminGate:
    """Checks admin tokens and registration access tokens against the store."""

    def __init__(self, store: Store, realm: str, security: SecurityEvents) -> None:
        self.store = store
        self.realm = realm
        self.security = security

    async def admin(
        self, headers: dict[str, str], now: float, role: AdminRole, refused: Action
    ) -> AdminToken:
        """A usable admin token allowed `role` (ADMIN may do everything REGISTER may)."""
        try:
            presented = bearer_token(headers, self.realm)
            token = await self.store.get_admin_token(hash_value(presented))
            if token is None or not verify_secret(presented, token.token_hash):
                raise invalid_token(self.realm)
            if not token.is_usable(now):
                raise invalid_token(self.realm)
            if role is AdminRole.ADMIN and token.role is not AdminRole.ADMIN:
                challenge = bearer_challenge(
                    self.realm, "insufficient_scope", "needs an admin token"
                )
                raise InsufficientScope(
                    "needs an admin token", headers={"WWW-Authenticate": challenge}
                )
        except OAuthError as exc:
            await self.security.refused(refused, headers.get(PEER, ""), exc.error)
            raise
        return token

    async def registered(self, headers: dict[str, str], client_id: str) -> Client:
        """RFC 7592 §2: the enabled client whose registration access token this is. Unknown
        client, wrong token and disabled client all look alike (401)."""
        try:
            presented = bearer_token(headers, self.realm)
            client = await self.store.get_client(client_id)
            stored = client.registration_token_hash if client is not None else None
            if not verify_secret(presented, stored) or client is None or client.disabled:
                raise invalid_token(self.realm)
        except OAuthError as exc:
            await self.security.refused(
                Action.REGISTRATION_REFUSED, headers.get(PEER, ""), exc.error
            )
            raise
        return client


async def json_body(reader: BodyReader, receive: Receive, headers: dict[str, str]) -> Any:
    """A JSON request body (`Content-Type: application/json`), parsed; 415 / 400 otherwise."""
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"Content-Type must be {JSON_MEDIA_TYPE}")
    body = await reader.read(receive, headers)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("the body is not JSON") from None
