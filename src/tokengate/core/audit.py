"""Audit log entries: who did what to which client, when, and how it ended. Sans-I/O.

Every management action and every security event becomes one `AuditEntry`, written by the
store in the same transaction as the change it records (so an entry exists exactly when the
change does), logged on the `tokengate.audit` logger, and read back by `tokengate audit` and
`GET /admin/api/audit`. Entries never hold a token or a secret: `detail` carries at most
SHA-256 digests (`hashed`) and metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tokengate.core.credentials import hash_value

CLI_ACTOR = "cli"
SERVER_ACTOR = "server"


class Action(StrEnum):
    """What happened."""

    CLIENT_CREATED = "client_created"
    CLIENT_UPDATED = "client_updated"
    CLIENT_SECRET_ROTATED = "client_secret_rotated"
    CLIENT_DISABLED = "client_disabled"
    CLIENT_DELETED = "client_deleted"
    CLIENT_REGISTERED = "client_registered"  # RFC 7591 §3
    CLIENT_READ = "client_read"  # RFC 7592 §2.1 (rotates the registration access token)
    ADMIN_TOKEN_CREATED = "admin_token_created"
    ADMIN_TOKEN_REVOKED = "admin_token_revoked"
    TOKEN_REVOKED = "token_revoked"  # by an operator (CLI or management API)
    REGISTRATION_REFUSED = "registration_refused"
    THROTTLING_ENGAGED = "throttling_engaged"
    ADMIN_AUTH_FAILED = "admin_auth_failed"
    SIGNING_KEY_CREATED = "signing_key_created"  # RFC 9701: the first start's key
    SIGNING_KEY_ROTATED = "signing_key_rotated"


class Outcome(StrEnum):
    """How it ended."""

    OK = "ok"
    NOT_FOUND = "not_found"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One durable audit record; `position` is assigned by the store (0 before)."""

    position: int
    occurred_at: int
    actor: str
    action: Action
    outcome: Outcome
    client_id: str | None = None
    target: str | None = None
    detail: str = "{}"  # a JSON object: metadata and digests only


def entry(
    action: Action,
    actor: str,
    at: int,
    *,
    client_id: str | None = None,
    target: str | None = None,
    outcome: Outcome = Outcome.OK,
    **detail: Any,
) -> AuditEntry:
    """A new (unsaved) entry; `detail` keys become the JSON `detail` object."""
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    return AuditEntry(0, at, actor, action, outcome, client_id, target, text)


def hashed(value: str) -> str:
    """How a secret value may appear in an entry: `sha256:<hex>`."""
    return "sha256:" + hash_value(value)


def as_document(record: AuditEntry) -> dict[str, Any]:
    """The JSON object of one entry, as `tokengate audit --json` and the API print it."""
    return {
        "position": record.position,
        "occurred_at": record.occurred_at,
        "actor": record.actor,
        "action": record.action.value,
        "outcome": record.outcome.value,
        "client_id": record.client_id,
        "target": record.target,
        "detail": json.loads(record.detail),
    }
