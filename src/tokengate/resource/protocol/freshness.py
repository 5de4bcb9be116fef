"""How long an introspection answer may be reused (RFC 7662 §4: never beyond `exp`).

* A positive answer is fresh until min(`exp`, now + `max_ttl`, now + TTL cap); without `exp`
  until now + `max_ttl`.
* A negative answer is kept only when `negative_ttl` > 0 (opt-in, keep it short).
* Once `exp` has passed, the claims themselves say the token can never be valid again
  (`known_expired`): caches may keep such an answer as a marker and refuse without a call.
"""

from __future__ import annotations

from tokengate.resource.protocol.claims import TokenClaims


def fresh_until(
    claims: TokenClaims,
    *,
    now: float,
    max_ttl: float,
    negative_ttl: float = 0.0,
    cap: float | None = None,
    not_after: float | None = None,
) -> float | None:
    """The epoch time until which `claims` may be served from cache, or None for "do not cache"."""
    if claims.active:
        limit = now + max_ttl if claims.exp is None else min(now + max_ttl, claims.exp)
    elif negative_ttl > 0:
        limit = now + negative_ttl
    else:
        return None
    if cap is not None:
        limit = min(limit, now + cap)
    if not_after is not None:
        limit = min(limit, not_after)
    return limit if limit > now else None


def known_expired(claims: TokenClaims, now: float) -> bool:
    """True when the claims themselves say the token is past its `exp`."""
    return claims.active and claims.exp is not None and claims.exp <= now
