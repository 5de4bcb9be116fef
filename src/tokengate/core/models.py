"""Records the authorization server keeps: clients, access tokens, revocation events.

Nothing here holds a usable secret: clients carry the hash of their secret and tokens are
known only by the hash of their value (RFC 6749 §10.3, RFC 9700 §4.9.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokengate.core.wire import EventKind

__all__ = ["AccessToken", "Client", "EventKind", "RevocationEvent"]


@dataclass(frozen=True, slots=True)
class Client:
    """A confidential OAuth client (RFC 6749 §2.1) allowed the client credentials grant."""

    client_id: str
    name: str
    secret_hash: str
    scopes: frozenset[str]
    audiences: tuple[str, ...] = ()
    can_introspect: bool = False
    token_ttl: int = 3600
    disabled: bool = False
    created_at: int = 0
    secret_rotated_at: int = 0


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued opaque access token, known by the SHA-256 of its value."""

    token_hash: str
    jti: str
    client_id: str
    scopes: frozenset[str]
    audiences: tuple[str, ...]
    issued_at: int
    expires_at: int
    revoked_at: int | None = None

    def is_active(self, now: float) -> bool:
        """RFC 7662 §4: not revoked, not expired, already valid."""
        return self.revoked_at is None and self.issued_at <= now < self.expires_at


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """A durable, ordered event: a token (by hash) or a client's tokens are no longer valid."""

    position: int
    kind: EventKind
    client_id: str
    token_hash: str | None = None
    occurred_at: int = 0
