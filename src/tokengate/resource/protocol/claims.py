"""Introspection claims (RFC 7662 §2.2), validated into a frozen value.

The confirmation member `cnf` (RFC 7800 §3.1) is read too: `cnf.jkt` is the RFC 7638
thumbprint of the key a DPoP-bound token is bound to (RFC 9449 §6.2). A token with any `cnf`,
or with `token_type` `DPoP`, is `sender_constrained`: it is never accepted as a bearer token.

Only members RFC 7662 defines are read, so any conforming authorization server works
(tokengate, node-oidc-provider, Keycloak, Hydra, ...); the full response stays in `raw`.
A member with the wrong JSON type makes the whole response unusable: a cache cannot be
bounded by an `exp` it cannot read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokengate.resource.protocol.errors import InvalidIntrospectionResponse

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_STRING_MEMBERS = ("client_id", "sub", "username", "iss", "jti", "token_type")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What the authorization server said about a token; the handler's view of the caller."""

    active: bool
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    sub: str | None = None
    username: str | None = None
    aud: tuple[str, ...] = ()
    iss: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    jti: str | None = None
    token_type: str | None = None
    jkt: str | None = None
    sender_constrained: bool = False
    raw: Mapping[str, Any] = field(
        default_factory=lambda: _EMPTY, compare=False, hash=False, repr=False
    )

    @property
    def scope(self) -> str:
        """The scopes as an RFC 6749 §3.3 space-delimited string, sorted."""
        return " ".join(sorted(self.scopes))

    def to_dict(self) -> dict[str, Any]:
        """An RFC 7662 §2.2 shaped dict of the known members (None and empty left out)."""
        out: dict[str, Any] = {"active": self.active}
        if self.scopes:
            out["scope"] = self.scope
        for name in (*_STRING_MEMBERS, "exp", "iat", "nbf"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.aud:
            out["aud"] = list(self.aud)
        if self.jkt is not None:
            out["cnf"] = {"jkt": self.jkt}
        return out


INACTIVE = TokenClaims(active=False, raw=MappingProxyType({"active": False}))


def parse_claims(document: object) -> TokenClaims:
    """Validate an RFC 7662 §2.2 response body (already JSON-decoded)."""
    if not isinstance(document, dict):
        raise InvalidIntrospectionResponse("introspection response is not a JSON object")
    active = document.get("active")
    if not isinstance(active, bool):
        raise InvalidIntrospectionResponse("introspection response lacks a boolean 'active'")
    if not active:
        return INACTIVE  # §2.2: nothing else should be there, and nothing else matters
    token_type = _string(document, "token_type")
    jkt, confirmed = _confirmation(document.get("cnf"))
    return TokenClaims(
        active=True,
        scopes=_scopes(document.get("scope")),
        aud=_audiences(document.get("aud")),
        exp=_time(document, "exp", math.floor),
        iat=_time(document, "iat", math.floor),
        nbf=_time(document, "nbf", math.ceil),
        client_id=_string(document, "client_id"),
        sub=_string(document, "sub"),
        username=_string(document, "username"),
        iss=_string(document, "iss"),
        jti=_string(document, "jti"),
        token_type=token_type,
        jkt=jkt,
        sender_constrained=confirmed or (token_type or "").lower() == "dpop",
        raw=MappingProxyType(dict(document)),
    )


def _string(document: Mapping[str, object], name: str) -> str | None:
    value = document.get(name)
    if value is None or isinstance(value, str):
        return value
    raise InvalidIntrospectionResponse(f"introspection member '{name}' is not a string")


def _confirmation(value: object) -> tuple[str | None, bool]:
    """(`cnf.jkt`, whether the token is bound at all); a binding we cannot read still binds."""
    if value is None:
        return None, False
    if not isinstance(value, dict):
        raise InvalidIntrospectionResponse("introspection member 'cnf' is not an object")
    jkt = value.get("jkt")
    if jkt is not None and not isinstance(jkt, str):
        raise InvalidIntrospectionResponse("introspection member 'cnf.jkt' is not a string")
    return jkt, True


def _scopes(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    raise InvalidIntrospectionResponse("introspection member 'scope' is not a string")


def _audiences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidIntrospectionResponse("introspection member 'aud' is not a string or list")


def _time(
    document: Mapping[str, object], name: str, rounding: Callable[[float], int]
) -> int | None:
    # Rounding errs on the safe side: exp/iat down, nbf up (RFC 7519 NumericDate may be fractional).
    # Exact types, checked in the order they come: a bool is an int to isinstance, never a time.
    value = document.get(name)
    if type(value) is int or value is None:
        return value
    if type(value) is float and math.isfinite(value):
        return int(rounding(value))
    raise InvalidIntrospectionResponse(f"introspection member '{name}' is not a number")
