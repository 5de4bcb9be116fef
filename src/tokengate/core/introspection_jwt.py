"""RFC 9701: the JWT response for token introspection — negotiating it, building it, and
verifying it (the resource server's side). Sans-I/O; joserfc does the JWS work.

The response is a JWS (§5) whose header has `typ: token-introspection+jwt` and the `kid` of
the signing key, and whose claims are `iss` (the issuer), `aud` (the calling resource server's
client id), `iat`, and `token_introspection`: the RFC 7662 §2.2 object, exactly what the JSON
answer would carry (`{"active": false}` for a token not shown). It is asked for with
`Accept: application/token-introspection+jwt` (§4); JSON stays the default (`wants_jwt`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tokengate.core.signing_keys import ALGORITHMS

MEDIA_TYPE = "application/token-introspection+jwt"
TYP = "token-introspection+jwt"
CLAIM = "token_introspection"
MAX_RESPONSE_BYTES = 64 * 1024
CLOCK_SKEW = 60  # seconds an `iat` may lie in the future (clocks of two hosts)
MAX_AGE = 300  # seconds after `iat` a response is still accepted
_JSON = "application/json"


def wants_jwt(accept: str | None) -> bool:
    """RFC 9110 §12.5.1: True when `accept` prefers the JWT to JSON.

    Each media type gets the q of the most specific range that matches it (`type/subtype`
    over `type/*` over `*/*`). The JWT is chosen when its q is above 0 and above JSON's, or
    equal to it and the JWT is named explicitly; a field that accepts neither gets JSON.
    """
    if accept is None or "token-introspection+jwt" not in accept.lower():
        return False  # the hot path: one substring test
    ranges = _ranges(accept)
    jwt_q, named = _quality(ranges, MEDIA_TYPE)
    json_q, _ = _quality(ranges, _JSON)
    return jwt_q > 0 and (jwt_q > json_q or (jwt_q == json_q and named))


def _ranges(accept: str) -> list[tuple[str, float]]:
    parsed: list[tuple[str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                q = _q(value.strip())
        parsed.append((media.lower(), q))
    return parsed


def _q(value: str) -> float:
    """RFC 9110 §12.4.2 qvalue; a malformed one counts as 0 (not acceptable)."""
    try:
        q = float(value)
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 and len(value) <= 5 else 0.0


def _quality(ranges: list[tuple[str, float]], media: str) -> tuple[float, bool]:
    """The q of the most specific range matching `media`, and whether it was named exactly."""
    kind = media.split("/", maxsplit=1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for found, q in ranges:
        specificity = 2 if found == media else 1 if found == f"{kind}/*" else 0
        if found not in (media, f"{kind}/*", "*/*"):
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1], best[0] == 2


def response_claims(
    introspection: dict[str, Any], issuer: str, audience: str, now: int
) -> dict[str, Any]:
    """§5: the JWT claims around an RFC 7662 answer."""
    return {"iss": issuer, "aud": audience, "iat": now, CLAIM: introspection}


def sign_response(claims: dict[str, Any], key: Any, kid: str, alg: str) -> str:
    """§5: the compact JWS of `claims`, typed `token-introspection+jwt`."""
    header = {"typ": TYP, "alg": alg, "kid": kid}
    return jwt.encode(header, claims, key, algorithms=[alg], registry=_registry(ALGORITHMS))


class ResponseRefused(Exception):
    """A signed introspection response that must not be trusted; the message says why."""


class UnknownSigningKey(ResponseRefused):
    """No key of the JWKS has the response's `kid`: the JWKS may be worth refetching."""


@dataclass(frozen=True, slots=True)
class Expected:
    """What a resource server requires of a response: who signed it, for whom, how."""

    issuer: str
    audience: str
    algorithms: Collection[str] = ALGORITHMS


def verify_response(body: str, keys: KeySet, expected: Expected, now: float) -> dict[str, Any]:
    """§5, §8.1: verify the signature, `typ`, `alg`, `iss`, `aud` and `iat`; the RFC 7662
    object it carries. `ResponseRefused` says what failed."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise ResponseRefused("signed introspection response is too large")
    algorithms = [a for a in expected.algorithms if a in ALGORITHMS]
    try:
        registry = _registry(algorithms)
        token = jwt.decode(body.strip(), keys, algorithms=algorithms, registry=registry)
    except InvalidKeyIdError:
        raise UnknownSigningKey("no published key has this kid") from None
    except (JoseError, ValueError, TypeError) as exc:
        raise ResponseRefused(f"signature is not valid: {exc}") from None
    if token.header.get("typ") != TYP:
        raise ResponseRefused(f'typ must be "{TYP}"')
    return _check_claims(token.claims, expected, now)


def _check_claims(claims: dict[str, Any], expected: Expected, now: float) -> dict[str, Any]:
    if claims.get("iss") != expected.issuer:
        raise ResponseRefused("iss is not the issuer")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if expected.audience not in named:
        raise ResponseRefused("aud is not this resource server")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ResponseRefused("iat must be a NumericDate")
    if iat > now + CLOCK_SKEW or iat < now - MAX_AGE - CLOCK_SKEW:
        raise ResponseRefused("iat is too far from now")
    body = claims.get(CLAIM)
    if not isinstance(body, dict):
        raise ResponseRefused(f"{CLAIM} must be an object")
    return body


class _Registry(JWSRegistry):
    """joserfc's registry limited to the given (asymmetric) algorithms: `none` and HMAC never."""

    def __init__(self, allowed: Collection[str]) -> None:
        super().__init__(algorithms=list(allowed))
        self._allowed = frozenset(allowed)

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in self._allowed or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


_REGISTRIES: dict[frozenset[str], _Registry] = {}


def _registry(allowed: Collection[str]) -> _Registry:
    key = frozenset(allowed)
    found = _REGISTRIES.get(key)
    if found is None:
        found = _REGISTRIES[key] = _Registry(key)
    return found
