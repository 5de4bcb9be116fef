"""Records ↔ SQL rows, shared by the SQLite and PostgreSQL backends.

Scopes are space-separated (RFC 6749 §3.3 scope tokens cannot hold a space); audiences are a
JSON array (an audience string is not guaranteed to be free of spaces). Booleans go in as
Python bools (SQLite stores 1/0, PostgreSQL BOOLEAN) and come back through `bool()`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tokengate.core.models import AccessToken, Client


def client_row(c: Client) -> tuple[Any, ...]:
    """Column values in the order of the clients table."""
    return (
        c.client_id, c.name, c.secret_hash, " ".join(sorted(c.scopes)),
        json.dumps(list(c.audiences)), c.can_introspect, c.token_ttl, c.disabled,
        c.created_at, c.secret_rotated_at,
    )  # fmt: skip


def client_from_row(row: Sequence[Any]) -> Client:
    """The inverse of `client_row`."""
    cid, name, secret_hash, scopes, auds, introspect, ttl, disabled, created, rotated = row
    return Client(
        cid, name, secret_hash, frozenset(scopes.split()), tuple(json.loads(auds)),
        bool(introspect), ttl, bool(disabled), created, rotated,
    )  # fmt: skip


def token_row(t: AccessToken) -> tuple[Any, ...]:
    """Column values in the order of the tokens table."""
    return (
        t.token_hash, t.jti, t.client_id, " ".join(sorted(t.scopes)),
        json.dumps(list(t.audiences)), t.issued_at, t.expires_at, t.revoked_at,
    )  # fmt: skip


def token_from_row(row: Sequence[Any]) -> AccessToken:
    """The inverse of `token_row`."""
    token_hash, jti, cid, scopes, auds, issued_at, expires_at, revoked_at = row
    return AccessToken(
        token_hash, jti, cid, frozenset(scopes.split()), tuple(json.loads(auds)),
        issued_at, expires_at, revoked_at,
    )  # fmt: skip
