"""In-memory backend: for tests and ephemeral demos. Same semantics as the durable ones."""

from __future__ import annotations

import dataclasses

from tokengate.core.models import AccessToken, Client, EventKind, RevocationEvent
from tokengate.storage.base import StaleClient


class MemoryStore:
    """A `Store` kept in dictionaries; nothing survives the process."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._events: list[RevocationEvent] = []

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    def _emit(
        self, kind: EventKind, client_id: str, at: int, token_hash: str | None = None
    ) -> None:
        position = len(self._events) + 1
        self._events.append(RevocationEvent(position, kind, client_id, token_hash, at))

    async def add_client(self, client: Client) -> None:
        if client.client_id in self._clients:
            raise ValueError(f"client {client.client_id} exists")
        self._clients[client.client_id] = client

    async def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def list_clients(self) -> list[Client]:
        return sorted(self._clients.values(), key=lambda c: (c.created_at, c.client_id))

    async def set_client_secret(self, client_id: str, secret_hash: str, at: int) -> bool:
        client = self._clients.get(client_id)
        if client is None:
            return False
        self._clients[client_id] = dataclasses.replace(
            client, secret_hash=secret_hash, secret_rotated_at=at
        )
        self._emit(EventKind.SECRET_ROTATED, client_id, at)
        return True

    async def disable_client(self, client_id: str, at: int) -> bool:
        client = self._clients.get(client_id)
        if client is None:
            return False
        self._clients[client_id] = dataclasses.replace(client, disabled=True)
        for key, token in self._tokens.items():
            if token.client_id == client_id and token.revoked_at is None:
                self._tokens[key] = dataclasses.replace(token, revoked_at=at)
        self._emit(EventKind.CLIENT_DISABLED, client_id, at)
        return True

    async def delete_client(self, client_id: str, at: int) -> bool:
        if self._clients.pop(client_id, None) is None:
            return False
        self._tokens = {k: t for k, t in self._tokens.items() if t.client_id != client_id}
        self._emit(EventKind.CLIENT_DELETED, client_id, at)
        return True

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        if secret_hash is not None:
            client = self._clients.get(token.client_id)
            if client is None or client.disabled or client.secret_hash != secret_hash:
                raise StaleClient(token.client_id)
        if token.token_hash in self._tokens:
            raise ValueError(f"token {token.jti} exists")
        self._tokens[token.token_hash] = token

    async def get_token(self, token_hash: str) -> AccessToken | None:
        return self._tokens.get(token_hash)

    async def revoke_token(self, token_hash: str, at: int) -> bool:
        token = self._tokens.get(token_hash)
        if token is None or token.revoked_at is not None:
            return False
        self._tokens[token_hash] = dataclasses.replace(token, revoked_at=at)
        self._emit(EventKind.TOKEN_REVOKED, token.client_id, at, token_hash)
        return True

    async def purge_expired(self, before: int) -> int:
        expired = [k for k, t in self._tokens.items() if t.expires_at <= before]
        for key in expired:
            del self._tokens[key]
        return len(expired)

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        return self._events[position : position + limit]

    async def last_position(self) -> int:
        return len(self._events)
