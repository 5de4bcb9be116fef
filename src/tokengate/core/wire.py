"""What the authorization server and its resource servers both speak: paths, event kinds, and
the revocation-event stream's frames (RFC 8414 §3 for the paths; WHATWG HTML §9.2 for SSE).

Defined once here and imported by both sides (`tokengate.server.stream` writes the frames,
`tokengate.resource` reads them), so the two cannot drift. Sans-I/O.

One revocation event on `GET /oauth2/events`::

    id: 42
    event: revocation
    data: {"position":42,"kind":"token_revoked","client_id":"tgc_…","token_hash":"…",
           "occurred_at":1700000000}        (on one line)

The token is named by its SHA-256 hex (never the token itself), or a client whose tokens all
ended. After any backlog the stream sends `event: sync` with the head position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PATH = "/oauth2/token"
INTROSPECT_PATH = "/oauth2/introspect"
REVOKE_PATH = "/oauth2/revoke"
EVENTS_PATH = "/oauth2/events"
REGISTER_PATH = "/oauth2/register"  # RFC 7591 §3; RFC 7592 client URIs are under it
JWKS_PATH = "/oauth2/jwks"  # RFC 8414 §2 `jwks_uri`: the keys signing RFC 9701 responses
ADMIN_API_PATH = "/admin/api"
ADMIN_CONSOLE_PATH = "/admin"  # the browser console (off unless enabled)
METADATA_PATH = "/.well-known/oauth-authorization-server"
# Our RFC 8414 §2 extension member naming the events endpoint.
EVENTS_METADATA_MEMBER = "revocation_events_endpoint"

REVOCATION_EVENT = "revocation"
SYNC_EVENT = "sync"


class EventKind(StrEnum):
    """Why tokens stopped being valid before their `exp`."""

    TOKEN_REVOKED = "token_revoked"
    CLIENT_DISABLED = "client_disabled"
    CLIENT_DELETED = "client_deleted"
    SECRET_ROTATED = "secret_rotated"
    CLIENT_UPDATED = "client_updated"  # metadata changed (scopes, audiences, permissions)


# What each kind ends: one token, every token of a client, or (a rotated secret or changed
# metadata leaves issued tokens valid) nothing a resource server caches.
TOKEN_KINDS = frozenset({EventKind.TOKEN_REVOKED.value})
CLIENT_KINDS = frozenset({EventKind.CLIENT_DISABLED.value, EventKind.CLIENT_DELETED.value})
NO_OP_KINDS = frozenset({EventKind.SECRET_ROTATED.value, EventKind.CLIENT_UPDATED.value})


class InvalidEvent(ValueError):
    """A revocation frame that cannot be interpreted: it must not be skipped silently."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One revocation event's payload. `kind` stays text: a newer server may send new kinds."""

    position: int
    kind: str
    client_id: str
    token_hash: str | None
    occurred_at: float


def encode_notice(notice: Notice) -> str:
    """The JSON `data` of an `event: revocation` frame (one line, no spaces)."""
    document = {
        "position": notice.position,
        "kind": notice.kind,
        "client_id": notice.client_id,
        "token_hash": notice.token_hash,
        "occurred_at": notice.occurred_at,
    }
    return json.dumps(document, separators=(",", ":"))


def parse_notice(data: str) -> Notice:
    """The inverse of `encode_notice`; raises `InvalidEvent` for anything else."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidEvent("revocation event data is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidEvent("revocation event data is not an object")
    position, kind = document.get("position"), document.get("kind")
    client_id, token_hash = document.get("client_id"), document.get("token_hash")
    occurred_at = document.get("occurred_at")
    if not isinstance(position, int) or isinstance(position, bool):
        raise InvalidEvent("revocation event position is not an integer")
    if not isinstance(kind, str) or not isinstance(client_id, str):
        raise InvalidEvent("revocation event lacks kind or client_id")
    if token_hash is not None and not isinstance(token_hash, str):
        raise InvalidEvent("revocation event token_hash is not a string")
    if not isinstance(occurred_at, int | float) or isinstance(occurred_at, bool):
        raise InvalidEvent("revocation event occurred_at is not a number")
    return Notice(position, kind, client_id, token_hash, float(occurred_at))


def revocation_frame(notice: Notice) -> bytes:
    """One SSE frame for a revocation event (its `id` is the position, for `Last-Event-ID`)."""
    data = encode_notice(notice)
    return f"id: {notice.position}\nevent: {REVOCATION_EVENT}\ndata: {data}\n\n".encode()


def sync_frame(position: int) -> bytes:
    """The frame that says "you are caught up to `position`"."""
    return f'id: {position}\nevent: {SYNC_EVENT}\ndata: {{"position":{position}}}\n\n'.encode()
