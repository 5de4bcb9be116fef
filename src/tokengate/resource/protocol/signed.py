"""Sans-I/O checks of RFC 9701 signed introspection responses, as a resource server makes
them: the answer must be a `application/token-introspection+jwt` JWS that verifies with the
issuer's published keys, typed, from the issuer, for this resource server, and fresh
(`core.introspection_jwt.verify_response`). Anything else is refused: with the option on, an
unsigned or badly signed answer is never taken for the truth (a 503 to the caller, not a 401).

Imports joserfc: loaded only when a validator asks for signed responses.
"""

from __future__ import annotations

from typing import Any

import orjson
from joserfc.jwk import KeySet

from tokengate.core.client_assertion import BadJwks, parse_jwks
from tokengate.core.introspection_jwt import (
    MEDIA_TYPE,
    Expected,
    ResponseRefused,
    UnknownSigningKey,
    verify_response,
)
from tokengate.resource.protocol.errors import IntrospectionUnavailable
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse

__all__ = [
    "MEDIA_TYPE",
    "Expected",
    "ResponseRefused",
    "UnknownSigningKey",
    "check_signed",
    "jwks_request",
    "parse_jwks_response",
]


def jwks_request(url: str) -> HttpRequest:
    """RFC 7517 §5: GET of the issuer's JWK Set."""
    accept = "application/jwk-set+json, application/json;q=0.9"
    return HttpRequest("GET", url, (("accept", accept),))


def parse_jwks_response(response: HttpResponse) -> KeySet:
    """The public keys of a JWKS answer; `IntrospectionUnavailable` for anything else."""
    if response.status != 200:
        raise IntrospectionUnavailable(f"jwks_uri answered HTTP {response.status}")
    try:
        return parse_jwks(orjson.loads(response.body))
    except (BadJwks, ValueError, RecursionError) as exc:
        raise IntrospectionUnavailable(f"jwks_uri gave no usable JWKS: {exc}") from None


def check_signed(
    response: HttpResponse, keys: KeySet, expected: Expected, now: float
) -> dict[str, Any]:
    """The RFC 7662 object of a signed answer. `UnknownSigningKey` (refetch the JWKS, then
    ask again) or `IntrospectionUnavailable` when it is not to be trusted."""
    media = (response.content_type or "").split(";", 1)[0].strip().lower()
    if media != MEDIA_TYPE:
        raise IntrospectionUnavailable(f"answer is not signed ({media or 'no content type'})")
    try:
        return verify_response(response.body.decode("ascii"), keys, expected, now)
    except UnknownSigningKey:
        raise
    except (ResponseRefused, UnicodeDecodeError) as exc:
        raise IntrospectionUnavailable(f"signed answer refused: {exc}") from None
