"""The storage interface: three small Protocols every backend implements.

Backends store hashes only (see `tokengate.core.credentials`). Every operation that ends a
token's validity before its `exp` appends a `RevocationEvent` in the same transaction, so the
event log is durable, ordered by `position`, and replayable (issue: instant revocation).

A backend raises `StorageUnavailable` (its driver's error as the cause) when the database is
unreachable or too busy right now: the server answers 503 with Retry-After (RFC 6749 §5.2
`temporarily_unavailable`) instead of 500, and never needs to import a database driver.
"""

from __future__ import annotations

import sys
from typing import Protocol

from tokengate.core.models import AccessToken, Client, RevocationEvent


class StaleClient(Exception):
    """The client was disabled, deleted or re-keyed after the request authenticated."""


class StorageUnavailable(Exception):
    """The database is unreachable or too busy right now; the same call may work later."""


# Driver errors that mean an outage, for a store that lets one escape unmapped (a custom
# backend, a test double). Found through `sys.modules`: a driver that was never imported cannot
# have raised, and classifying must not import one (the server would load psycopg for nothing).
_DRIVER_OUTAGES = (
    ("sqlite3", "OperationalError"),  # locked past busy_timeout, disk I/O error, cannot open
    ("psycopg", "OperationalError"),  # connection lost or refused, statement_timeout
    ("psycopg_pool", "PoolTimeout"),  # no pooled connection within the pool timeout
)


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database is unreachable or busy right now"."""
    if isinstance(exc, StorageUnavailable | ConnectionError | TimeoutError):
        return True
    for module, name in _DRIVER_OUTAGES:
        driver = sys.modules.get(module)
        if driver is not None and isinstance(exc, getattr(driver, name)):
            return True
    return False


class ClientStore(Protocol):
    """Confidential clients, looked up on every authenticated request."""

    async def add_client(self, client: Client) -> None:
        """Insert a new client; raises `ValueError` if the id exists."""

    async def get_client(self, client_id: str) -> Client | None:
        """The client with this id, disabled ones included."""

    async def list_clients(self) -> list[Client]:
        """All clients, ordered by creation time then id."""

    async def set_client_secret(self, client_id: str, secret_hash: str, at: int) -> bool:
        """Replace the secret hash (rotation); False if no such client. Emits SECRET_ROTATED."""

    async def disable_client(self, client_id: str, at: int) -> bool:
        """Disable the client and revoke all its live tokens; emits CLIENT_DISABLED."""

    async def delete_client(self, client_id: str, at: int) -> bool:
        """Delete the client and its tokens; emits CLIENT_DELETED."""


class TokenStore(Protocol):
    """Issued access tokens, keyed by the SHA-256 of their value."""

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        """Persist a newly issued token; durable (committed) when this returns.

        With `secret_hash` (what the token endpoint always passes: the hash of the secret the
        request authenticated with), the insert happens only if the client still exists, is
        enabled and has that secret, checked atomically with the insert; otherwise
        `StaleClient` is raised. This closes the race with a concurrent disable, delete or
        rotation. Raises `ValueError` if the hash already exists.
        """

    async def get_token(self, token_hash: str) -> AccessToken | None:
        """The token with this hash, whatever its state; None if unknown or purged."""

    async def revoke_token(self, token_hash: str, at: int) -> bool:
        """Mark revoked (durably) and emit TOKEN_REVOKED; False if unknown or already revoked."""

    async def purge_expired(self, before: int) -> int:
        """Delete tokens whose `expires_at` <= `before`; returns how many."""


class EventStore(Protocol):
    """The revocation event log."""

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        """Events with `position` > the given one, oldest first.

        Positions strictly increase but may have gaps (PostgreSQL sequences): resume from the
        last position seen, never count positions.
        """

    async def last_position(self) -> int:
        """Position of the newest event, 0 when there is none."""


class Store(ClientStore, TokenStore, EventStore, Protocol):
    """A complete backend. `open` creates the schema (idempotent, safe to race)."""

    async def open(self) -> None:
        """Connect and create the schema if missing."""

    async def close(self) -> None:
        """Release connections; pending writes are flushed first."""
