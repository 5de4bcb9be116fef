"""`private_key_jwt` client authentication: RFC 7523 §2.2 and §3, RFC 7521 §4.2. Sans-I/O.

A client registered with a public JWKS (RFC 7591 §2 `jwks` or `jwks_uri`) authenticates with
`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a JWT it
signed (`client_assertion`). The checks, each an `invalid_client` when it fails:

- the JWS `alg` is one of `ALGORITHMS` (asymmetric: `none` and HMAC are refused, so the public
  key can never serve as an HMAC secret) and the key is found in the client's JWKS by `kid`;
- `iss` = `sub` = the client id (§3 items 1 and 2);
- `aud` holds the issuer, the token endpoint or the endpoint being called (§3 item 3);
- `exp` is present, not passed, and at most `MAX_LIFETIME` after now and after `iat`
  (`CLOCK_SKEW` allowed each way); `nbf` and `iat` are not in the future (§3 items 4-6);
- `jti` is present (§3 item 7); that it was never used before is the caller's check, against
  the replay store, keyed by `replay_key`.

JWKS checks (`parse_jwks`): only public RSA (≥ 2048 bits), EC P-256 and OKP Ed25519 keys; a key
with private members or a symmetric (`oct`) key is refused. joserfc does the JWS work.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import ECKey, JWKRegistry, KeySet, OKPKey, RSAKey

from tokengate.core.jose import LimitedRegistry

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METHOD = "private_key_jwt"
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
MAX_ASSERTION_LENGTH = 8192  # a compact JWS signed with a 4096-bit RSA key is well under 2 KiB
MAX_LIFETIME = 300  # seconds an assertion may live (from iat and from now)
CLOCK_SKEW = 30  # seconds of disagreement between the client's clock and ours
MAX_KEYS = 20
MAX_JWKS_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


_REGISTRY = LimitedRegistry(ALGORITHMS)


class AssertionRefused(Exception):
    """The assertion fails a check; the message says which (safe to show the client)."""


class UnknownKey(AssertionRefused):
    """No key of the JWKS has the assertion's `kid`: a `jwks_uri` may be worth refetching."""


class BadJwks(ValueError):
    """A JWKS that is not a set of public signing keys of the supported kinds."""


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a valid assertion leaves for the replay check."""

    client_id: str
    jti: str
    expires_at: int


def parse_jwks(document: object) -> KeySet:
    """A JWKS (RFC 7517 §5) of public signing keys; `BadJwks` says what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise BadJwks('jwks must be an object with a "keys" array')
    keys = document["keys"]
    if not 1 <= len(keys) <= MAX_KEYS:
        raise BadJwks(f"jwks must hold 1 to {MAX_KEYS} keys")
    return KeySet([public_key(key) for key in keys])


def public_key(jwk: object) -> Any:
    """One public signing key of the kinds `parse_jwks` accepts; `BadJwks` says what is wrong."""
    _check_public(jwk)
    try:
        key = JWKRegistry.import_key(jwk)  # type: ignore[arg-type]  # a dict: checked above
    except (JoseError, ValueError, TypeError, KeyError) as exc:  # KeyError: an unknown "crv"
        raise BadJwks(f"an unusable key: {exc}") from None
    _check_kind(key)
    return key


def _check_public(key: object) -> None:
    if not isinstance(key, dict):
        raise BadJwks("each JWK must be an object")
    if key.get("kty") == "oct" or _PRIVATE_MEMBERS & key.keys():
        raise BadJwks("jwks must hold public keys only")
    if key.get("use", "sig") != "sig":
        raise BadJwks('a JWK "use" must be "sig"')
    if key.get("kty") == "RSA" and _modulus_bits(key.get("n")) < MIN_RSA_BITS:
        # Checked before joserfc imports it, which would only warn.
        raise BadJwks(f"RSA keys must have at least {MIN_RSA_BITS} bits")


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(_b64decode(n), "big").bit_length()
    except ValueError:
        return 0


def _check_kind(key: Any) -> None:
    if isinstance(key, RSAKey):
        if key.raw_value.key_size < MIN_RSA_BITS:
            raise BadJwks(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    elif isinstance(key, ECKey):
        if key.curve_name != "P-256":
            raise BadJwks("EC keys must be on P-256 (ES256)")
    elif not (isinstance(key, OKPKey) and key.curve_name == "Ed25519"):
        raise BadJwks("keys must be RSA, EC P-256 or OKP Ed25519")


def jwks_text(key_set: object) -> str:
    """The canonical JSON text a client's inline JWKS is stored as."""
    return json.dumps(key_set, sort_keys=True, separators=(",", ":"))


def claimed_client_id(assertion: str) -> str:
    """The unverified `sub` of a compact JWS: which client's keys to verify it with."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionRefused("client_assertion is too large")
    parts = assertion.split(".")
    if len(parts) != 3:
        raise AssertionRefused("client_assertion must be a compact JWS")
    try:
        payload = json.loads(_b64decode(parts[1]))
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise AssertionRefused("client_assertion payload is not JSON") from None
    sub = payload.get("sub") if isinstance(payload, dict) else None
    if not isinstance(sub, str) or not sub:
        raise AssertionRefused("client_assertion has no sub")
    return sub


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify_assertion(
    assertion: str, client_id: str, keys: KeySet, audiences: Collection[str], now: float
) -> VerifiedAssertion:
    """Verify the signature and RFC 7523 §3's claims; `AssertionRefused` says which failed."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionRefused("client_assertion is too large")
    try:
        token = jwt.decode(assertion, keys, algorithms=ALGORITHMS, registry=_REGISTRY)
    except InvalidKeyIdError:
        raise UnknownKey("no key of the client has this kid") from None
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise AssertionRefused(f"client_assertion signature is not valid: {exc}") from None
    return _check_claims(token.claims, client_id, audiences, now)


def _check_claims(
    claims: dict[str, Any], client_id: str, audiences: Collection[str], now: float
) -> VerifiedAssertion:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRefused("iss and sub must be the client id")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise AssertionRefused("aud must be the issuer or this endpoint")
    exp = _time(claims, "exp", required=True)
    assert exp is not None
    if exp <= now - CLOCK_SKEW:
        raise AssertionRefused("client_assertion has expired")
    if exp > now + MAX_LIFETIME + CLOCK_SKEW:
        raise AssertionRefused(f"client_assertion may live at most {MAX_LIFETIME} s")
    for name in ("iat", "nbf"):
        at = _time(claims, name, required=False)
        if at is not None and at > now + CLOCK_SKEW:
            raise AssertionRefused(f"{name} is in the future")
        if name == "iat" and at is not None and exp - at > MAX_LIFETIME + CLOCK_SKEW:
            raise AssertionRefused(f"client_assertion may live at most {MAX_LIFETIME} s")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 512:
        raise AssertionRefused("client_assertion needs a jti")
    return VerifiedAssertion(client_id, jti, int(exp) + CLOCK_SKEW)


def _time(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise AssertionRefused(f"{name} must be a NumericDate")
    return float(value)


def replay_key(client_id: str, jti: str) -> str:
    """The replay store's key of one assertion: SHA-256 of (client id, jti)."""
    return hashlib.sha256(f"{client_id}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()
