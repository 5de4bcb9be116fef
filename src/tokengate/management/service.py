"""The management operations, one definition for every caller: the CLI on the database, the
management API, RFC 7591/7592 registration and `tokengate apply`.

Each operation writes its audit entry in the same transaction as its change (the store's
`audit=`), then puts it on the log stream; an operation that finds nothing to change records
a `not_found` entry instead. Secrets and tokens are generated here, returned once, and reach
the store and the audit log only as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokengate.core import credentials
from tokengate.core.audit import Action, AuditEntry, Outcome, entry, hashed
from tokengate.core.client_assertion import METHOD as PRIVATE_KEY_JWT
from tokengate.core.errors import InvalidRequest
from tokengate.core.models import AdminRole, AdminToken, Client
from tokengate.core.registration import ClientMetadata, with_metadata
from tokengate.core.scopes import format_scope
from tokengate.management.journal import logged, record
from tokengate.storage.base import ClientActivity, Store

MAX_GRACE = 30 * 86_400  # a rotation's overlap: at most 30 days


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just created, its secret and (registered ones) its registration token: the
    only moment these values exist outside their digests."""

    client: Client
    secret: str
    registration_token: str | None = None


@dataclass(frozen=True, slots=True)
class Overview:
    """A client with its recent activity (what a console lists)."""

    client: Client
    activity: ClientActivity


class Management:
    """The operations, done by one actor (an admin token's id, `cli`, a registered client)."""

    def __init__(self, store: Store, actor: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.actor = actor
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    def _entry(self, action: Action, client_id: str | None, **detail: Any) -> AuditEntry:
        return entry(action, self.actor, self._now(), client_id=client_id, **detail)

    async def _done(self, ok: bool, note: AuditEntry) -> bool:
        """Log the entry the store wrote, or record that there was nothing to change."""
        if ok:
            logged(note)
        else:
            await record(self.store, dataclasses.replace(note, outcome=Outcome.NOT_FOUND))
        return ok

    async def create_client(
        self,
        metadata: ClientMetadata,
        *,
        client_id: str | None = None,
        secret_hash: str | None = None,
        registered: bool = False,
    ) -> NewClient:
        """A new client (`ValueError` if `client_id` exists); a secret is made unless the
        digest of one is given (then `NewClient.secret` is empty: it is not known here). A
        `private_key_jwt` client gets the digest of a secret nobody is given, and no secret."""
        secret = "" if secret_hash else credentials.new_client_secret()
        secret_hash = secret_hash or credentials.hash_value(secret)
        if not metadata.has_secret:
            secret = ""
        token = credentials.new_registration_token() if registered else None
        now = self._now()
        client = with_metadata(
            Client(client_id or credentials.new_client_id(), "", secret_hash,
                   frozenset(), created_at=now, secret_rotated_at=now,
                   registration_token_hash=credentials.hash_value(token) if token else None),
            metadata,
        )  # fmt: skip
        action = Action.CLIENT_REGISTERED if registered else Action.CLIENT_CREATED
        note = self._entry(action, client.client_id, **_described(client))
        await self.store.add_client(client, audit=note)
        logged(note)
        return NewClient(client, secret, token)

    async def update_client(
        self,
        client: Client,
        metadata: ClientMetadata,
        *,
        new_registration_token: bool = False,
        action: Action = Action.CLIENT_UPDATED,
    ) -> tuple[Client, str | None] | None:
        """Replace `client`'s metadata (re-enabling it); optionally a new registration token.
        None if the client is gone."""
        token = credentials.new_registration_token() if new_registration_token else None
        changed = with_metadata(dataclasses.replace(client, disabled=False), metadata)
        if token is not None:
            changed = dataclasses.replace(
                changed, registration_token_hash=credentials.hash_value(token)
            )
        note = self._entry(action, client.client_id, **_described(changed))
        ok = await self.store.update_client(changed, self._now(), audit=note)
        return (changed, token) if await self._done(ok, note) else None

    async def rotate_secret(self, client_id: str, grace: int) -> str | None:
        """A new secret; the old one works `grace` more seconds. None if no such client;
        `InvalidRequest` for a `private_key_jwt` client (it authenticates with keys only)."""
        client = await self.store.get_client(client_id)
        if client is not None and client.auth_method == PRIVATE_KEY_JWT:
            raise InvalidRequest("a private_key_jwt client has no secret to rotate")
        secret = credentials.new_client_secret()
        ok = await self._rotate(client_id, credentials.hash_value(secret), grace)
        return secret if ok else None

    async def set_secret_hash(self, client_id: str, secret_hash: str) -> bool:
        """Replace the secret by one the operator chose (`apply`), known by its digest; the
        old one stops at once."""
        return await self._rotate(client_id, secret_hash, 0)

    async def _rotate(self, client_id: str, digest: str, grace: int) -> bool:
        if not 0 <= grace <= MAX_GRACE:
            raise ValueError(f"grace must be 0 to {MAX_GRACE} seconds")
        exact = self.clock()
        now = int(exact)
        # Times are whole seconds: round the grace end up, so it is never shorter than asked.
        grace = math.ceil(exact + grace) - now if grace else 0
        until = now + grace if grace else None
        note = self._entry(
            Action.CLIENT_SECRET_ROTATED, client_id, grace=grace, previous_valid_until=until,
            secret=_fingerprint(digest),
        )  # fmt: skip
        ok = await self.store.set_client_secret(client_id, digest, now, grace=grace, audit=note)
        return await self._done(ok, note)

    async def disable(self, client_id: str) -> bool:
        """Disable a client and revoke its tokens."""
        note = self._entry(Action.CLIENT_DISABLED, client_id)
        return await self._done(
            await self.store.disable_client(client_id, self._now(), audit=note), note
        )

    async def delete(self, client_id: str) -> bool:
        """Delete a client and its tokens."""
        note = self._entry(Action.CLIENT_DELETED, client_id)
        return await self._done(
            await self.store.delete_client(client_id, self._now(), audit=note), note
        )

    async def revoke_token(self, token: str) -> bool:
        """Revoke an access token by its value (known to the audit log by its digest only)."""
        digest = credentials.hash_value(token)
        note = dataclasses.replace(self._entry(Action.TOKEN_REVOKED, None), target=hashed(token))
        ok = await self.store.revoke_token(digest, self._now(), audit=note)
        if ok:
            found = await self.store.get_token(digest)
            logged(dataclasses.replace(note, client_id=found.client_id if found else None))
            return True
        return await self._done(False, note)

    async def create_admin_token(
        self, role: AdminRole, ttl: int, name: str
    ) -> tuple[AdminToken, str]:
        """A new admin (or initial access) token valid `ttl` seconds; returns it and its value."""
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        value = credentials.new_admin_token()
        now = self._now()
        token = AdminToken(credentials.hash_value(value), credentials.new_public_id("tgadmid_"),
                           role, name, now, now + ttl)  # fmt: skip
        note = dataclasses.replace(
            self._entry(Action.ADMIN_TOKEN_CREATED, None, role=role.value, expires_at=now + ttl,
                        name=name),
            target=token.token_id,
        )  # fmt: skip
        await self.store.add_admin_token(token, audit=note)
        logged(note)
        return token, value

    async def revoke_admin_token(self, token_id: str) -> bool:
        """Revoke the admin token named `token_id` at once (every replica reads it per request)."""
        note = dataclasses.replace(self._entry(Action.ADMIN_TOKEN_REVOKED, None), target=token_id)
        ok = await self.store.revoke_admin_token(token_id, self._now(), audit=note)
        return await self._done(ok, note)

    async def overview(self, window: int = 3600) -> list[Overview]:
        """Every client with its tokens issued in the last `window` seconds and last issue."""
        activity = await self.store.client_activity(self._now() - window)
        none = ClientActivity(0, None)
        return [
            Overview(c, activity.get(c.client_id, none)) for c in await self.store.list_clients()
        ]


def _fingerprint(digest: str) -> str:
    """A short, safe reference to a secret: the start of its SHA-256 digest."""
    return "sha256:" + digest[:16]


def _described(client: Client) -> dict[str, Any]:
    """What an audit entry says about a client's metadata (nothing secret)."""
    return {
        "name": client.name,
        "scope": format_scope(client.scopes),
        "audiences": list(client.audiences),
        "introspect": client.can_introspect,
        "token_ttl": client.token_ttl,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
    }
