"""The storage interface: small Protocols every backend implements.

Backends store hashes only (see `tokengate.core.credentials`). Every operation that ends a
token's validity before its `exp` appends a `RevocationEvent` in the same transaction, so the
event log is durable, ordered by `position`, and replayable (issue: instant revocation).

A backend raises `StorageUnavailable` (its driver's error as the cause) when the database is
unreachable or too busy right now: the server answers 503 with Retry-After (RFC 6749 §5.2
`temporarily_unavailable`) instead of 500, and never needs to import a database driver.

Every management write takes an optional `audit` entry that the backend appends in the same
transaction as the change, and only when the change happened (a write that finds no such
client returns False and appends nothing; the caller records that outcome on its own).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Protocol

from tokengate.core.audit import AuditEntry
from tokengate.core.models import AccessToken, AdminToken, Client, RevocationEvent
from tokengate.core.signing_keys import SigningKey


class StaleClient(Exception):
    """The client was disabled, deleted or re-keyed after the request authenticated."""


class StorageUnavailable(Exception):
    """The database is unreachable or too busy right now; the same call may work later."""


class PurgeInProgress(Exception):
    """Another process is purging expired tokens from this database right now."""


@dataclass(frozen=True, slots=True)
class PurgePace:
    """How a purge spreads its work: `batch` rows per transaction, then a rest of `pause`
    seconds or `idle_ratio` times as long as the batch took, whichever is longer. The ratio
    bounds the share of time a purge keeps the database busy (1 / (1 + idle_ratio)) however
    slow a batch is: SQLite deletes a batch in ~80 ms where PostgreSQL takes ~11 ms, and a
    slow disk slows both."""

    batch: int = 500
    pause: float = 0.05
    idle_ratio: float = 3.0

    def __post_init__(self) -> None:
        # NaN passes every `<` check, and a NaN rest would never end (or never start): refuse.
        if self.batch < 1 or not all(
            math.isfinite(v) and v >= 0 for v in (self.pause, self.idle_ratio)
        ):
            raise ValueError("a purge pace needs batch >= 1 and finite pause and idle_ratio >= 0")


DEFAULT_PACE = PurgePace()


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


@dataclass(frozen=True, slots=True)
class ClientActivity:
    """What a console shows next to a client: recent issuance and the last one."""

    issued_since: int  # tokens issued at or after the `since` asked for
    last_issued_at: int | None  # the newest token still stored


class ClientStore(Protocol):
    """Confidential clients, looked up on every authenticated request."""

    async def add_client(self, client: Client, *, audit: AuditEntry | None = None) -> None:
        """Insert a new client; raises `ValueError` if the id exists."""

    async def get_client(self, client_id: str) -> Client | None:
        """The client with this id, disabled ones included."""

    async def list_clients(self) -> list[Client]:
        """All clients, ordered by creation time then id."""

    async def client_scopes(self) -> frozenset[str]:
        """The union of every client's scopes (the metadata's `scopes_supported`): one pass over
        the distinct scope strings, no client built."""

    async def update_client(
        self, client: Client, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        """Replace the client's metadata (name, scopes, audiences, introspection, TTL, auth
        method, registration token hash) and re-enable it if `client.disabled` is False; the
        secrets and `created_at` are kept. Emits CLIENT_UPDATED; False if no such client.
        Disabling goes through `disable_client` (it revokes tokens): a disabled `client` is a
        `ValueError`."""

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        at: int,
        *,
        grace: int = 0,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Replace the secret hash (rotation); False if no such client. Emits SECRET_ROTATED.

        With `grace` > 0 the replaced secret stays valid until `at + grace` (at most two
        secrets: an older previous one is dropped); with 0 it stops at once."""

    async def disable_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        """Disable the client and revoke all its live tokens; emits CLIENT_DISABLED."""

    async def delete_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        """Delete the client and its tokens; emits CLIENT_DELETED."""

    async def client_activity(self, since: int) -> dict[str, ClientActivity]:
        """Per client id with stored tokens: how many were issued at or after `since`, and the
        newest issue time."""


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

    async def revoke_token(
        self, token_hash: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        """Mark revoked (durably) and emit TOKEN_REVOKED; False if unknown or already revoked.

        With `audit`, the entry is appended with the token's `client_id` filled in."""

    async def purge_expired(self, before: int, *, pace: PurgePace = DEFAULT_PACE) -> int:
        """Delete tokens whose `expires_at` <= `before`; returns how many.

        The work is cut in keyset batches of `pace.batch` rows (oldest `expires_at` first), each
        its own transaction, with `pace.pause` seconds between them, so requests keep their
        latency. One purge at a time per database, across processes and hosts: a call made
        while another runs raises `PurgeInProgress` at once."""


class EventStore(Protocol):
    """The revocation event log."""

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        """Events with `position` > the given one, oldest first.

        Positions strictly increase but may have gaps (PostgreSQL sequences): resume from the
        last position seen, never count positions.
        """

    async def last_position(self) -> int:
        """Position of the newest event, 0 when there is none."""


class AdminTokenStore(Protocol):
    """Registration (RFC 7591 §3 initial access) and management credentials, by hash."""

    async def add_admin_token(self, token: AdminToken, *, audit: AuditEntry | None = None) -> None:
        """Persist a new admin token; `ValueError` if the hash exists."""

    async def get_admin_token(self, token_hash: str) -> AdminToken | None:
        """The admin token with this hash, whatever its state."""

    async def list_admin_tokens(self) -> list[AdminToken]:
        """Every admin token, whatever its state, oldest first."""

    async def revoke_admin_token(
        self, token_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        """Mark the token named `token_id` revoked at `at`; False if none is or it already was."""


class AuditStore(Protocol):
    """The append-only audit log."""

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry on its own (security events, refused or failed actions)."""

    async def audit_after(
        self,
        position: int = 0,
        *,
        since: int = 0,
        client_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries with `position` > the given one and `occurred_at` >= `since`, of one client
        if given, oldest first."""


class AssertionStore(Protocol):
    """RFC 7523 §3 item 7 replay protection: client assertions seen, until they expire."""

    async def use_assertion(self, key_hash: str, expires_at: int) -> bool:
        """Record an assertion by `client_assertion.replay_key`; False (and nothing written)
        when that key is already recorded: a replay. Durable when this returns."""

    async def purge_assertions(self, before: int) -> int:
        """Forget assertions whose `expires_at` <= `before`; returns how many."""


class SecretStore(Protocol):
    """Secrets every replica and worker shares (the DPoP nonce key, RFC 9449 §8)."""

    async def shared_secret(self, name: str, candidate: str, at: int) -> str:
        """The secret stored as `name`, storing `candidate` first when there is none: of racing
        callers exactly one stores, and all get the same value. Durable when this returns."""


class SigningKeyStore(Protocol):
    """RFC 9701 §5: the server's signing keys (private halves sealed); a handful of rows."""

    async def signing_keys(self) -> list[SigningKey]:
        """Every stored key, oldest first."""

    async def add_first_signing_key(self, key: SigningKey) -> bool:
        """Insert `key` only while no stored key is unretired (`retire_at` None): the first
        start's key, once however many replicas race; False (nothing written) otherwise."""

    async def rotate_signing_key(
        self, key: SigningKey, retire_at: int, *, audit: AuditEntry | None = None
    ) -> int:
        """In one transaction: every key not yet retiring gets `retire_at`, keys retired at or
        before `key.created_at` are deleted, `key` is inserted (`ValueError` if its kid is
        stored). Returns how many keys were given `retire_at`."""


class Store(
    ClientStore,
    TokenStore,
    EventStore,
    AdminTokenStore,
    AuditStore,
    AssertionStore,
    SecretStore,
    SigningKeyStore,
    Protocol,
):
    """A complete backend. `open` creates the schema (idempotent, safe to race)."""

    async def open(self) -> None:
        """Connect and create the schema if missing."""

    async def close(self) -> None:
        """Release connections; pending writes are flushed first."""
