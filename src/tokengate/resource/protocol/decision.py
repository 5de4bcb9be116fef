"""Allow, 401 or 403 from introspection claims (RFC 7662 §4, RFC 6750 §3.1, RFC 9449 §7).

The decision is recomputed from the claims and the current time on every request, cached or
not, so a cached answer can never outlive the token's `exp` nor precede its `nbf`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.errors import DPOP, InsufficientScope, InvalidToken


def authorize(
    claims: TokenClaims,
    *,
    required_scopes: Iterable[str] = (),
    now: float,
    audience: str | None = None,
    jkt: str | None = None,
) -> TokenClaims:
    """Return `claims` when they grant the request, else raise InvalidToken/InsufficientScope.

    `jkt` is the thumbprint of a verified DPoP proof's key, None for a bearer presentation."""
    check_token(claims, now=now, audience=audience)
    if jkt is not None or claims.sender_constrained:  # the unbound bearer path skips the call
        check_binding(claims, jkt)
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


def check_binding(claims: TokenClaims, jkt: str | None) -> None:
    """RFC 9449 §7.1, §7.2: a bound token only with a proof by its key; a proof only with a
    bound token (a proof proves nothing about a token bound to no key)."""
    if jkt is None:
        if claims.sender_constrained:
            raise InvalidToken("the access token is DPoP-bound: send it with a DPoP proof")
    elif claims.jkt is None:
        raise InvalidToken("the access token is not DPoP-bound", scheme=DPOP)
    elif claims.jkt != jkt:
        raise InvalidToken("the DPoP proof's key is not the access token's", scheme=DPOP)


def check_scopes(claims: TokenClaims, required: frozenset[str]) -> None:
    """RFC 6750 §3.1: 403 naming every scope the resource needs when one is missing."""
    if not required <= claims.scopes:
        needed = " ".join(sorted(required))
        raise InsufficientScope("the access token lacks a required scope", scope=needed)
