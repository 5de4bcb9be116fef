"""Allow, 401 or 403 from introspection claims (RFC 7662 §4, RFC 6750 §3.1).

The decision is recomputed from the claims and the current time on every request, cached or
not, so a cached answer can never outlive the token's `exp` nor precede its `nbf`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.errors import InsufficientScope, InvalidToken


def authorize(
    claims: TokenClaims,
    *,
    required_scopes: Iterable[str] = (),
    now: float,
    audience: str | None = None,
) -> TokenClaims:
    """Return `claims` when they grant the request, else raise InvalidToken/InsufficientScope."""
    check_token(claims, now=now, audience=audience)
    check_scopes(claims, frozenset(required_scopes))
    return claims


def check_token(claims: TokenClaims, *, now: float, audience: str | None = None) -> None:
    """RFC 7662 §4: active, not expired, already valid, and meant for this resource server."""
    if not claims.active:
        raise InvalidToken("the access token is not active")
    if claims.exp is not None and now >= claims.exp:
        raise InvalidToken("the access token has expired")
    if claims.nbf is not None and now < claims.nbf:
        raise InvalidToken("the access token is not valid yet")
    if audience is not None and audience not in claims.aud:
        raise InvalidToken("the access token is not meant for this resource server")


def check_scopes(claims: TokenClaims, required: frozenset[str]) -> None:
    """RFC 6750 §3.1: 403 naming every scope the resource needs when one is missing."""
    if not required <= claims.scopes:
        needed = " ".join(sorted(required))
        raise InsufficientScope("the access token lacks a required scope", scope=needed)
