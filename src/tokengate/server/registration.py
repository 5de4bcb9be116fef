"""RFC 7591 dynamic client registration and RFC 7592 client configuration endpoints.

`POST /oauth2/register` needs an initial access token (RFC 7591 §3; `tokengate admin-tokens
create`): registration is never open. It answers 201 with the client information (§3.2.1):
`client_id`, `client_secret` (shown once), `client_id_issued_at`, `client_secret_expires_at`
(0: the secret does not expire), the metadata, and RFC 7592 §3's `registration_access_token`
and `registration_client_uri` (`/oauth2/register/{client_id}`).

At that URI the registration access token reads (GET, §2.1), replaces (PUT, §2.2) and deletes
(DELETE, §2.3, 204) the client. Only its SHA-256 is stored, so every answer that must carry it
(§3) carries a new one: each read and update rotates it (§3 allows the server to), and the
previous one stops at once. A client may not give itself introspection it does not have, nor
change its `client_id`; a `client_secret` in an update must be the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tokengate.asgi.body import BodyReader
from tokengate.asgi.types import Receive
from tokengate.core.audit import Action
from tokengate.core.credentials import verify_secret
from tokengate.core.errors import InvalidClientMetadata, InvalidRequest, MethodNotAllowed
from tokengate.core.models import AdminRole, Client
from tokengate.core.registration import information, metadata_of, parse_metadata
from tokengate.core.responses import Response, json_response
from tokengate.core.wire import REGISTER_PATH
from tokengate.management.service import Management
from tokengate.server.admin_auth import AdminGate, invalid_token, json_body
from tokengate.server.request_headers import PEER
from tokengate.storage.base import Store

# RFC 7592 §2.2: an update request MUST NOT carry these.
_SERVER_ONLY = (
    "registration_access_token", "registration_client_uri", "client_secret_expires_at",
    "client_id_issued_at",
)  # fmt: skip


class Registration:
    """The RFC 7591 endpoint and the RFC 7592 client configuration endpoint."""

    def __init__(
        self,
        store: Store,
        gate: AdminGate,
        body: BodyReader,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.gate = gate
        self.body = body
        self.base = issuer.rstrip("/") + REGISTER_PATH
        self.clock = clock
        self.on_change = on_change

    async def register(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 7591 §3.1: register a client; §3.2.1 answer (201) or §3.2.2 error (400)."""
        now = self.clock()
        token = await self.gate.admin(headers, now, AdminRole.REGISTER, Action.REGISTRATION_REFUSED)
        document = await json_body(self.body, receive, headers)
        try:
            metadata = parse_metadata(document, may_introspect=token.role is AdminRole.ADMIN)
        except InvalidClientMetadata as exc:
            await self.gate.security.refused(
                Action.REGISTRATION_REFUSED, headers.get(PEER, ""), exc.error
            )
            raise
        management = Management(self.store, f"admin-token:{token.token_id}", self.clock)
        made = await management.create_client(metadata, registered=True)
        assert made.registration_token is not None
        answer = self._information(made.client, made.registration_token)
        if metadata.has_secret:
            answer |= {"client_secret": made.secret, "client_secret_expires_at": 0}
        return json_response(201, answer)

    async def configure(
        self, method: str, client_id: str, receive: Receive, headers: dict[str, str]
    ) -> Response:
        """RFC 7592 §2: read, update or delete the client at its configuration URI."""
        if method not in ("GET", "PUT", "DELETE"):
            raise MethodNotAllowed("use GET, PUT or DELETE", headers={"Allow": "DELETE, GET, PUT"})
        client = await self.gate.registered(headers, client_id)
        management = Management(self.store, f"client:{client_id}", self.clock)
        if method == "DELETE":
            await management.delete(client_id)
            self.on_change()
            return Response(204, b"", ((b"cache-control", b"no-store"),))
        if method == "PUT":
            document = await json_body(self.body, receive, headers)
            _check_update(document, client)
            metadata = parse_metadata(document, may_introspect=client.can_introspect)
            action = Action.CLIENT_UPDATED
        else:  # a read changes nothing but the registration access token (module doc)
            metadata, action = metadata_of(client), Action.CLIENT_READ
        updated = await management.update_client(
            client, metadata, new_registration_token=True, action=action
        )
        if updated is None:  # deleted meanwhile: its token is no longer valid (§2.1)
            raise invalid_token(self.gate.realm)
        changed, token = updated
        assert token is not None
        self.on_change()
        return json_response(200, self._information(changed, token))

    def _information(self, client: Client, token: str) -> dict[str, Any]:
        return information(client) | {
            "registration_access_token": token,
            "registration_client_uri": f"{self.base}/{client.client_id}",
        }


def _check_update(document: object, client: Client) -> None:
    """RFC 7592 §2.2's rules on top of the metadata's own."""
    if not isinstance(document, dict):
        raise InvalidClientMetadata("the request body must be a JSON object")
    if document.get("client_id") != client.client_id:
        raise InvalidRequest("client_id must be present and equal to this client's")
    present = [name for name in _SERVER_ONLY if name in document]
    if present:
        raise InvalidRequest(f"an update must not include {', '.join(present)}")
    secret = document.get("client_secret")
    if secret is not None and not (
        isinstance(secret, str) and verify_secret(secret, client.secret_hash)
    ):
        raise InvalidClientMetadata("client_secret does not match the current secret")
