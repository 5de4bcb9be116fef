"""Records the authorization server keeps: clients, access tokens, revocation events, admin
tokens (RFC 7591 §3 initial access tokens and management credentials).

Nothing here holds a usable secret: clients carry the hash of their secret and tokens are
known only by the hash of their value (RFC 6749 §10.3, RFC 9700 §4.9.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tokengate.core.wire import EventKind

__all__ = ["AccessToken", "AdminRole", "AdminToken", "Client", "EventKind", "RevocationEvent"]


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
    # A rotation with grace keeps the previous secret working until this time (epoch seconds).
    previous_secret_hash: str | None = None
    previous_secret_expires_at: int | None = None
    # RFC 7592 §1.2: the hash of the registration access token, for clients registered over
    # RFC 7591; None for clients made by the CLI or `apply`.
    registration_token_hash: str | None = None
    # RFC 7591 §2 `token_endpoint_auth_method` as registered: both secret methods are accepted
    # for either; `private_key_jwt` (RFC 7523 §2.2) accepts only assertions, and then the
    # secret hash is of a value nobody was given.
    auth_method: str = "client_secret_basic"
    # RFC 7591 §2 public keys of a `private_key_jwt` client: an inline JWKS (canonical JSON
    # text) or the https URL it is fetched from; never both.
    jwks: str | None = None
    jwks_uri: str | None = None
    # RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof.
    dpop_bound_access_tokens: bool = False

    def previous_secret_at(self, now: float) -> str | None:
        """The previous secret's hash while its grace lasts at `now`, else None."""
        expires = self.previous_secret_expires_at
        if self.previous_secret_hash is None or expires is None or now >= expires:
            return None
        return self.previous_secret_hash


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
    # RFC 9449 §6: the RFC 7638 thumbprint of the DPoP key the token is bound to; None: Bearer.
    jkt: str | None = None

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


class AdminRole(StrEnum):
    """What an admin token may do."""

    REGISTER = "register"  # RFC 7591 §3 initial access token: POST /oauth2/register only
    ADMIN = "admin"  # the whole management API (and registration)


@dataclass(frozen=True, slots=True)
class AdminToken:
    """A bearer credential for registration or management, known by its SHA-256."""

    token_hash: str
    token_id: str  # public: names the credential as the actor in the audit log
    role: AdminRole
    name: str
    created_at: int
    expires_at: int
    revoked_at: int | None = None

    def is_usable(self, now: float) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and now < self.expires_at
