"""How clients and admin tokens are shown: the JSON the CLI prints and the management API
returns (one definition, so a console, the CLI and scripts see the same documents). Never a
secret or a secret's hash."""

from __future__ import annotations

import json
from typing import Any

from tokengate.core.models import AdminToken, Client
from tokengate.core.scopes import format_scope
from tokengate.storage.base import ClientActivity


def secret_states(client: Client, now: float) -> list[dict[str, Any]]:
    """The client's secrets: the current one, and the previous one while it has a grace
    (`active` false once the grace has ended; the entry goes at the next rotation)."""
    states: list[dict[str, Any]] = [
        {"secret": "current", "active": True, "since": client.secret_rotated_at}
    ]
    until = client.previous_secret_expires_at
    if client.previous_secret_hash is not None and until is not None:
        active = client.previous_secret_at(now) is not None
        states.append({"secret": "previous", "active": active, "valid_until": until})
    return states


def client_view(
    client: Client, now: float, activity: ClientActivity | None = None
) -> dict[str, Any]:
    """A client as operators see it."""
    view: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "scope": format_scope(client.scopes),
        "audiences": list(client.audiences),
        "introspect": client.can_introspect,
        "token_ttl": client.token_ttl,
        "disabled": client.disabled,
        "created_at": client.created_at,
        "secret_rotated_at": client.secret_rotated_at,
        "secrets": secret_states(client, now),
        "registered": client.registration_token_hash is not None,
        "token_endpoint_auth_method": client.auth_method,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
    }
    if client.jwks_uri is not None:
        view["jwks_uri"] = client.jwks_uri
    if client.jwks is not None:
        view["jwks"] = json.loads(client.jwks)
    if activity is not None:
        view["tokens_issued_last_hour"] = activity.issued_since
        view["last_token_issued_at"] = activity.last_issued_at
    return view


def admin_token_state(token: AdminToken, now: float) -> dict[str, Any]:
    """An admin token as listed: its public id, role, dates and state, never its digest."""
    state = "revoked" if token.revoked_at is not None else "active"
    if state == "active" and now >= token.expires_at:
        state = "expired"
    return {
        "token_id": token.token_id,
        "role": token.role.value,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "state": state,
    }


def admin_token_view(token: AdminToken, value: str) -> dict[str, Any]:
    """A just-created admin token, its value shown this once under the key its role names."""
    key = "initial_access_token" if token.role.value == "register" else "admin_token"
    return {
        key: value,
        "token_id": token.token_id,
        "role": token.role.value,
        "name": token.name,
        "expires_at": token.expires_at,
    }
