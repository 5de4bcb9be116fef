"""The token endpoint's grant logic: RFC 6749 §4.4 client credentials, RFC 8707 resources, and
RFC 9449 §5 DPoP binding (the proof itself is checked by `tokengate.core.dpop`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokengate.core import credentials
from tokengate.core.errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokengate.core.forms import single
from tokengate.core.models import AccessToken, Client
from tokengate.core.scopes import check_resource, format_scope, parse_scope

CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The record to store and the §5.1 response body (which holds the only raw copy)."""

    record: AccessToken
    body: dict[str, Any]


def check_grant_type(form: dict[str, list[str]]) -> None:
    """§4.4.2: `grant_type=client_credentials` is the only grant we serve."""
    grant_type = single(form, "grant_type")
    if grant_type is None:
        raise InvalidRequest("missing grant_type")
    if grant_type != CLIENT_CREDENTIALS:
        raise UnsupportedGrantType("only client_credentials is supported")


def granted_scopes(client: Client, form: dict[str, list[str]]) -> frozenset[str]:
    """§3.3: requested scopes must be allowed; none requested means all allowed ones."""
    requested = single(form, "scope")
    if requested is None:
        return client.scopes
    scopes = parse_scope(requested)
    if not scopes <= client.scopes:
        raise InvalidScope("requested scope exceeds what the client is allowed")
    return scopes


def granted_audiences(client: Client, form: dict[str, list[str]]) -> tuple[str, ...]:
    """RFC 8707 §2: `resource` picks audiences among those the client may use."""
    resources = [check_resource(r) for r in form.get("resource", [])]
    if not resources:
        return client.audiences
    if any(r not in client.audiences for r in resources):
        raise InvalidTarget("resource is not allowed for this client")
    return tuple(dict.fromkeys(resources))


def issue(
    client: Client, form: dict[str, list[str]], now: int, *, jkt: str | None = None
) -> IssuedToken:
    """Validate the grant request and mint a token (no refresh token: §4.4.3), bound to the
    DPoP key with thumbprint `jkt` when given (RFC 9449 §5: `token_type` `DPoP`)."""
    check_grant_type(form)
    if client.disabled:
        raise UnauthorizedClient("client is disabled")
    scopes = granted_scopes(client, form)
    audiences = granted_audiences(client, form)
    token, jti = credentials.new_access_token_and_jti()
    record = AccessToken(
        token_hash=credentials.hash_value(token),
        jti=jti,
        client_id=client.client_id,
        scopes=scopes,
        audiences=audiences,
        issued_at=now,
        expires_at=now + client.token_ttl,
        jkt=jkt,
    )
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer" if jkt is None else "DPoP",
        "expires_in": client.token_ttl,
    }
    if scopes:  # RFC 6749 §3.3: a scope is 1*scope-token, so an empty set is no member at all
        body["scope"] = format_scope(scopes)
    return IssuedToken(record, body)
