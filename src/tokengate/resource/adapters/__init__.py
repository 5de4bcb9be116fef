"""Thin adapters over the one runtime: ASGI middleware, WSGI middleware, FastAPI dependency.

Each refuses, when it is built, a validator it cannot drive, and treats nothing but a
`TokenClaims` the runtime validated as a reason to let a request through.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import quote

from tokengate.asgi.types import Scope
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.dpop import request_url
from tokengate.resource.protocol.errors import InvalidToken
from tokengate.resource.protocol.policy import Policy
from tokengate.resource.runtime.validator import Validator


def require_validator(validator: object, adapter: str) -> Validator:
    """`validator` if it is the runtime's `Validator`, else `TypeError` (fail closed at build).

    The real type is checked, not `isinstance`: a mock made with `spec=Validator` claims that
    class through `__class__` and would pass."""
    if not issubclass(type(validator), Validator) or not isinstance(validator, Validator):
        raise TypeError(
            f"{adapter} needs the Validator that create_validator(...) returns,"
            f" not {type(validator).__name__}"
        )
    return validator


def validated(claims: object) -> TokenClaims:
    """Let only active `TokenClaims` through: a coroutine, None or anything else is a 401."""
    if not isinstance(claims, TokenClaims) or not claims.active:
        raise InvalidToken("the access token could not be validated")
    return claims


def scope_url(scope: Scope, allowed_origins: Collection[str]) -> str:
    """The URL of an ASGI request as its client called it: what a DPoP proof's `htu` names."""
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    raw: bytes | None = scope.get("raw_path")
    path = (
        raw.decode("latin-1").partition("?")[0]
        if raw
        else quote(scope["path"], safe="/:@!$&'()*+,;=-._~%")
    )
    return request_url(scope.get("scheme", "http"), host, path, allowed_origins)


class Protection:
    """What every middleware holds: the validator it drives (checked), the policy (default:
    everything protected), the token header and the challenge realm."""

    def __init__(
        self, validator: object, adapter: str, policy: Policy | None, token_header: str, realm: str
    ) -> None:
        self.validator = require_validator(validator, adapter)
        self.policy = policy if policy is not None else Policy.protect("/**")
        self.token_header = token_header
        self.realm = realm
