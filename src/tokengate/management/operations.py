"""The management operations as documents: what the CLI prints and the management API
returns. `Operations` is met by `LocalOperations` (over a store, used by the CLI and by the
server's API) and by the CLI's remote client (over the API), so every command can drive either.
"""

from __future__ import annotations

from typing import Any, Protocol

from tokengate.core.audit import as_document
from tokengate.core.models import AdminRole
from tokengate.core.registration import ClientMetadata
from tokengate.management.service import Management
from tokengate.management.views import admin_token_state, admin_token_view, client_view

Document = dict[str, Any]


class Operations(Protocol):
    """Client management, answered as JSON documents; None/False: no such client or token."""

    async def create_client(self, metadata: ClientMetadata) -> Document:
        """Create a client; the document holds `client_id` and `client_secret` (once; none for
        a `private_key_jwt` client)."""

    async def list_clients(self) -> list[Document]:
        """Every client with its activity in the last hour."""

    async def show_client(self, client_id: str) -> Document | None:
        """One client."""

    async def rotate_secret(self, client_id: str, grace: int) -> Document | None:
        """A new secret (`client_secret`), the old one valid `grace` more seconds."""

    async def disable_client(self, client_id: str) -> bool:
        """Disable a client and revoke its tokens."""

    async def delete_client(self, client_id: str) -> bool:
        """Delete a client and its tokens."""

    async def revoke_token(self, token: str) -> bool:
        """Revoke an access token by its value."""

    async def create_admin_token(self, role: AdminRole, ttl: int, name: str) -> Document:
        """A new admin or initial access token (its value shown once)."""

    async def list_admin_tokens(self) -> list[Document]:
        """Every admin token's id, role, dates and state (never a value or digest)."""

    async def revoke_admin_token(self, token_id: str) -> bool:
        """Revoke an admin token by its public id (`tgadmid_...`)."""

    async def audit(
        self, since: int = 0, client_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Document]:
        """Audit entries, oldest first."""


class LocalOperations:
    """`Operations` over a store, by one actor."""

    def __init__(self, management: Management) -> None:
        self.management = management
        self.store = management.store

    async def create_client(self, metadata: ClientMetadata) -> Document:
        made = await self.management.create_client(metadata)
        if not metadata.has_secret:
            return {"client_id": made.client.client_id}
        return {"client_id": made.client.client_id, "client_secret": made.secret}

    async def list_clients(self) -> list[Document]:
        now = self.management.clock()
        rows = await self.management.overview()
        return [client_view(row.client, now, row.activity) for row in rows]

    async def show_client(self, client_id: str) -> Document | None:
        client = await self.store.get_client(client_id)
        return None if client is None else client_view(client, self.management.clock())

    async def rotate_secret(self, client_id: str, grace: int) -> Document | None:
        secret = await self.management.rotate_secret(client_id, grace)
        return None if secret is None else {"client_id": client_id, "client_secret": secret}

    async def disable_client(self, client_id: str) -> bool:
        return await self.management.disable(client_id)

    async def delete_client(self, client_id: str) -> bool:
        return await self.management.delete(client_id)

    async def revoke_token(self, token: str) -> bool:
        return await self.management.revoke_token(token)

    async def create_admin_token(self, role: AdminRole, ttl: int, name: str) -> Document:
        token, value = await self.management.create_admin_token(role, ttl, name)
        return admin_token_view(token, value)

    async def list_admin_tokens(self) -> list[Document]:
        now = self.management.clock()
        return [admin_token_state(t, now) for t in await self.store.list_admin_tokens()]

    async def revoke_admin_token(self, token_id: str) -> bool:
        return await self.management.revoke_admin_token(token_id)

    async def audit(
        self, since: int = 0, client_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Document]:
        found = await self.store.audit_after(after, since=since, client_id=client_id, limit=limit)
        return [as_document(e) for e in found]
