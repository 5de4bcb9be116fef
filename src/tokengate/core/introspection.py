"""RFC 7662 token introspection: who may ask, and what an answer contains (RFC 9449 §6.2 for a
DPoP-bound token's `cnf` and `token_type`)."""

from __future__ import annotations

from typing import Any

from tokengate.core.credentials import is_access_token_format
from tokengate.core.errors import InvalidRequest
from tokengate.core.forms import single
from tokengate.core.models import AccessToken, Client
from tokengate.core.scopes import format_scope

INACTIVE: dict[str, Any] = {"active": False}


def presented_token(form: dict[str, list[str]]) -> str:
    """§2.1: `token` is required.

    `token_type_hint` is accepted and ignored: we issue access tokens only, so every search
    covers every type we have (§2.1 "MUST extend its search").
    """
    token = single(form, "token")
    if token is None:
        raise InvalidRequest("missing token")
    return token


def worth_looking_up(token: str) -> bool:
    """False for a value that cannot be one of our tokens: no storage read is needed."""
    return is_access_token_format(token)


def visible_to(token: AccessToken, caller: Client) -> bool:
    """§4: a token bound to audiences is only shown to a resource server serving one."""
    return not token.audiences or not set(token.audiences).isdisjoint(caller.audiences)


def shown(token: AccessToken, caller: Client, now: float) -> bool:
    """§2.2, §4: active, and visible to this caller. Both are always evaluated, so that another
    audience's live token and an unknown one (checked as `DECOY_TOKEN`) take the same steps."""
    active = token.is_active(now)
    visible = visible_to(token, caller)
    return active and visible


def claims(token: AccessToken, issuer: str) -> dict[str, Any]:
    """§2.2: the full claim set of an active token (whoever asks: see `shown`)."""
    body: dict[str, Any] = {
        "active": True,
        "client_id": token.client_id,
        "token_type": "Bearer" if token.jkt is None else "DPoP",
        "exp": token.expires_at,
        "iat": token.issued_at,
        "nbf": token.issued_at,
        "sub": token.client_id,
        "iss": issuer,
        "jti": token.jti,
    }
    if token.scopes:  # RFC 7662 §2.2 takes RFC 6749 §3.3's 1*scope-token: no empty member
        body["scope"] = format_scope(token.scopes)
    if token.jkt is not None:  # RFC 9449 §6.2, RFC 7800 §3.1
        body["cnf"] = {"jkt": token.jkt}
    if token.audiences:
        body["aud"] = token.audiences[0] if len(token.audiences) == 1 else list(token.audiences)
    return body


def introspection_body(
    token: AccessToken | None, caller: Client, now: float, issuer: str
) -> dict[str, Any]:
    """§2.2: the full claim set for an active token, exactly `{"active": false}` otherwise."""
    if token is None or not shown(token, caller, now):
        return INACTIVE
    return claims(token, issuer)
