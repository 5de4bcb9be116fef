"""In-memory backend: for tests and ephemeral demos. Same semantics as the durable ones."""

from __future__ import annotations

import dataclasses

from tokengate.core.audit import AuditEntry
from tokengate.core.models import AccessToken, AdminToken, Client, EventKind, RevocationEvent
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.base import DEFAULT_PACE, ClientActivity, PurgePace, StaleClient


class MemoryStore:
    """A `Store` kept in dictionaries; nothing survives the process."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._events: list[RevocationEvent] = []
        self._admin_tokens: dict[str, AdminToken] = {}
        self._audit: list[AuditEntry] = []
        self._assertions: dict[str, int] = {}
        self._secrets: dict[str, str] = {}
        self._signing_keys: dict[str, SigningKey] = {}

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    def _emit(
        self, kind: EventKind, client_id: str, at: int, token_hash: str | None = None
    ) -> None:
        position = len(self._events) + 1
        self._events.append(RevocationEvent(position, kind, client_id, token_hash, at))

    def _record(self, audit: AuditEntry | None, client_id: str | None = None) -> None:
        if audit is not None:
            if client_id is not None:
                audit = dataclasses.replace(audit, client_id=client_id)
            self._audit.append(dataclasses.replace(audit, position=len(self._audit) + 1))

    async def add_client(self, client: Client, *, audit: AuditEntry | None = None) -> None:
        if client.client_id in self._clients:
            raise ValueError(f"client {client.client_id} exists")
        self._clients[client.client_id] = client
        self._record(audit)

    async def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def list_clients(self) -> list[Client]:
        return sorted(self._clients.values(), key=lambda c: (c.created_at, c.client_id))

    async def client_scopes(self) -> frozenset[str]:
        return frozenset(s for c in self._clients.values() for s in c.scopes)

    async def update_client(
        self, client: Client, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        if client.disabled:
            raise ValueError("disable a client with disable_client")
        stored = self._clients.get(client.client_id)
        if stored is None:
            return False
        self._clients[client.client_id] = dataclasses.replace(
            client,
            secret_hash=stored.secret_hash,
            secret_rotated_at=stored.secret_rotated_at,
            previous_secret_hash=stored.previous_secret_hash,
            previous_secret_expires_at=stored.previous_secret_expires_at,
            created_at=stored.created_at,
        )
        self._emit(EventKind.CLIENT_UPDATED, client.client_id, at)
        self._record(audit)
        return True

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        at: int,
        *,
        grace: int = 0,
        audit: AuditEntry | None = None,
    ) -> bool:
        client = self._clients.get(client_id)
        if client is None:
            return False
        previous = client.secret_hash if grace > 0 else None
        self._clients[client_id] = dataclasses.replace(
            client,
            secret_hash=secret_hash,
            secret_rotated_at=at,
            previous_secret_hash=previous,
            previous_secret_expires_at=at + grace if grace > 0 else None,
        )
        self._emit(EventKind.SECRET_ROTATED, client_id, at)
        self._record(audit)
        return True

    async def disable_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        client = self._clients.get(client_id)
        if client is None:
            return False
        self._clients[client_id] = dataclasses.replace(client, disabled=True)
        for key, token in self._tokens.items():
            if token.client_id == client_id and token.revoked_at is None:
                self._tokens[key] = dataclasses.replace(token, revoked_at=at)
        self._emit(EventKind.CLIENT_DISABLED, client_id, at)
        self._record(audit)
        return True

    async def delete_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        if self._clients.pop(client_id, None) is None:
            return False
        self._tokens = {k: t for k, t in self._tokens.items() if t.client_id != client_id}
        self._emit(EventKind.CLIENT_DELETED, client_id, at)
        self._record(audit)
        return True

    async def client_activity(self, since: int) -> dict[str, ClientActivity]:
        out: dict[str, ClientActivity] = {}
        for token in self._tokens.values():
            seen = out.get(token.client_id, ClientActivity(0, None))
            last = max(seen.last_issued_at or token.issued_at, token.issued_at)
            recent = seen.issued_since + (token.issued_at >= since)
            out[token.client_id] = ClientActivity(recent, last)
        return out

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        if secret_hash is not None:
            client = self._clients.get(token.client_id)
            if client is None or client.disabled or not _guard_holds(client, secret_hash, token):
                raise StaleClient(token.client_id)
        if token.token_hash in self._tokens:
            raise ValueError(f"token {token.jti} exists")
        self._tokens[token.token_hash] = token

    async def get_token(self, token_hash: str) -> AccessToken | None:
        return self._tokens.get(token_hash)

    async def revoke_token(
        self, token_hash: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        token = self._tokens.get(token_hash)
        if token is None or token.revoked_at is not None:
            return False
        self._tokens[token_hash] = dataclasses.replace(token, revoked_at=at)
        self._emit(EventKind.TOKEN_REVOKED, token.client_id, at, token_hash)
        self._record(audit, token.client_id)
        return True

    async def purge_expired(self, before: int, *, pace: PurgePace = DEFAULT_PACE) -> int:
        # One process, no other purger, and the loop is never given up: pace has nothing to do.
        expired = [k for k, t in self._tokens.items() if t.expires_at <= before]
        for key in expired:
            del self._tokens[key]
        return len(expired)

    async def use_assertion(self, key_hash: str, expires_at: int) -> bool:
        if key_hash in self._assertions:
            return False
        self._assertions[key_hash] = expires_at
        return True

    async def purge_assertions(self, before: int) -> int:
        expired = [k for k, at in self._assertions.items() if at <= before]
        for key in expired:
            del self._assertions[key]
        return len(expired)

    async def shared_secret(self, name: str, candidate: str, at: int) -> str:
        return self._secrets.setdefault(name, candidate)

    async def signing_keys(self) -> list[SigningKey]:
        return sorted(self._signing_keys.values(), key=lambda k: (k.created_at, k.kid))

    async def add_first_signing_key(self, key: SigningKey) -> bool:
        if any(k.retire_at is None for k in self._signing_keys.values()):
            return False
        self._signing_keys[key.kid] = key
        return True

    async def rotate_signing_key(
        self, key: SigningKey, retire_at: int, *, audit: AuditEntry | None = None
    ) -> int:
        if key.kid in self._signing_keys:
            raise ValueError(f"signing key {key.kid} exists")
        kept = {
            kid: k
            for kid, k in self._signing_keys.items()
            if k.retire_at is None or k.retire_at > key.created_at
        }
        retiring = [kid for kid, k in kept.items() if k.retire_at is None]
        for kid in retiring:
            kept[kid] = dataclasses.replace(kept[kid], retire_at=retire_at)
        kept[key.kid] = key
        self._signing_keys = kept
        self._record(audit)
        return len(retiring)

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        return self._events[position : position + limit]

    async def last_position(self) -> int:
        return len(self._events)

    async def add_admin_token(self, token: AdminToken, *, audit: AuditEntry | None = None) -> None:
        if token.token_hash in self._admin_tokens:
            raise ValueError(f"admin token {token.token_id} exists")
        self._admin_tokens[token.token_hash] = token
        self._record(audit)

    async def get_admin_token(self, token_hash: str) -> AdminToken | None:
        return self._admin_tokens.get(token_hash)

    async def list_admin_tokens(self) -> list[AdminToken]:
        return sorted(self._admin_tokens.values(), key=lambda t: (t.created_at, t.token_id))

    async def revoke_admin_token(
        self, token_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        for digest, token in self._admin_tokens.items():
            if token.token_id == token_id and token.revoked_at is None:
                self._admin_tokens[digest] = dataclasses.replace(token, revoked_at=at)
                self._record(audit)
                return True
        return False

    async def append_audit(self, entry: AuditEntry) -> None:
        self._record(entry)

    async def audit_after(
        self,
        position: int = 0,
        *,
        since: int = 0,
        client_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        found = (
            e
            for e in self._audit[position:]
            if e.occurred_at >= since and (client_id is None or e.client_id == client_id)
        )
        return [e for _, e in zip(range(limit), found, strict=False)]


def _guard_holds(client: Client, secret_hash: str, token: AccessToken) -> bool:
    """The token endpoint's secret is the client's current one, or its previous one in grace."""
    return secret_hash in (client.secret_hash, client.previous_secret_at(token.issued_at))
