"""RFC 9701: negotiating, building and verifying signed introspection responses."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import KeySet, OctKey, import_key

from tokengate.core import introspection_jwt as ij
from tokengate.core import key_sealing, signing_keys
from tokengate.core.introspection_jwt import Expected, ResponseRefused, UnknownSigningKey

ISSUER = "https://as.example.test"
RS = "tgc_resource"
KEK = key_sealing.parse_kek(key_sealing.new_kek())


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        pytest.param(None, False, id="absent-json"),
        pytest.param("application/json", False, id="json"),
        pytest.param("*/*", False, id="any-json-default"),
        pytest.param("application/token-introspection+jwt", True, id="rfc9701-4-jwt"),
        pytest.param("Application/Token-Introspection+JWT", True, id="case-insensitive"),
        pytest.param("application/token-introspection+jwt, application/json", True, id="tie-named"),
        pytest.param(
            "application/json, application/token-introspection+jwt;q=0.5", False, id="json-q"
        ),
        pytest.param(
            "application/json;q=0.1, application/token-introspection+jwt", True, id="jwt-q"
        ),
        pytest.param("application/token-introspection+jwt;q=0", False, id="jwt-refused"),
        pytest.param("application/*;q=0.2, application/token-introspection+jwt", True, id="wild"),
        pytest.param("application/token-introspection+jwt;q=0.3, */*", False, id="star-wins"),
        pytest.param("application/token-introspection+jwt;q=bogus", False, id="bad-q"),
        pytest.param("application/token-introspection+jwt;q=1.5", False, id="q-out-of-range"),
        pytest.param("text/html, application/token-introspection+jwt;q=0.9", True, id="html"),
    ],
)
def test_wants_jwt(accept: str | None, wanted: bool) -> None:
    """RFC 9110 §12.5.1 q-values and ranges decide; JSON stays the default."""
    assert ij.wants_jwt(accept) is wanted


def _key(alg: str = "ES256") -> tuple[signing_keys.SigningKey, Any, KeySet]:
    stored = key_sealing.generate(KEK, int(time.time()), alg=alg)
    private = import_key(json.loads(key_sealing.unseal(KEK, stored.kid, stored.sealed_private)))
    public = KeySet.import_key_set(signing_keys.jwks_document([stored], time.time()))
    return stored, private, public


def _signed(claims: dict[str, Any] | None = None, alg: str = "ES256") -> tuple[str, KeySet]:
    stored, private, public = _key(alg)
    now = int(time.time())
    body = claims or ij.response_claims({"active": True, "scope": "read"}, ISSUER, RS, now)
    return ij.sign_response(body, private, stored.kid, stored.alg), public


@pytest.mark.parametrize("alg", signing_keys.ALGORITHMS)
def test_round_trip(alg: str) -> None:
    """§5: header typ and kid, claims iss/aud/iat, and the RFC 7662 object inside."""
    token, keys = _signed(alg=alg)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "token-introspection+jwt"
    assert header["alg"] == alg
    assert header["kid"]
    got = ij.verify_response(token, keys, Expected(ISSUER, RS), time.time())
    assert got == {"active": True, "scope": "read"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"iss": "https://evil.example"}, "iss", id="wrong-iss"),
        pytest.param({"aud": "someone-else"}, "aud", id="wrong-aud"),
        pytest.param({"iat": int(time.time()) - 3600}, "iat", id="stale-iat"),
        pytest.param({"iat": int(time.time()) + 3600}, "iat", id="future-iat"),
        pytest.param({"iat": "now"}, "iat", id="iat-not-a-number"),
        pytest.param({"token_introspection": "active"}, "token_introspection", id="not-object"),
    ],
)
def test_claims_refused(change: dict[str, Any], message: str) -> None:
    """§8.1: each claim the resource server relies on is checked."""
    claims = ij.response_claims({"active": True}, ISSUER, RS, int(time.time())) | change
    token, keys = _signed(claims)
    with pytest.raises(ResponseRefused, match=message):
        ij.verify_response(token, keys, Expected(ISSUER, RS), time.time())


def test_wrong_typ_refused() -> None:
    """§8.1 (explicit typing): a JWS of the right key but another typ is no introspection answer."""
    stored, private, keys = _key()
    claims = ij.response_claims({"active": True}, ISSUER, RS, int(time.time()))
    header = {"alg": "ES256", "kid": stored.kid, "typ": "JWT"}
    token = jws.serialize_compact(
        header, json.dumps(claims).encode(), private, algorithms=["ES256"]
    )
    with pytest.raises(ResponseRefused, match="typ"):
        ij.verify_response(token, keys, Expected(ISSUER, RS), time.time())


def test_unsigned_and_hmac_refused() -> None:
    """alg none and HMAC keyed with the public key (alg confusion) never verify."""
    stored, _, keys = _key("RS256")
    claims = ij.response_claims({"active": True}, ISSUER, RS, int(time.time()))
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"token-introspection+jwt"}')
    with pytest.raises(ResponseRefused):
        ij.verify_response(
            f"{none.rstrip(b'=').decode()}.{payload}.", keys, Expected(ISSUER, RS), 0
        )
    secret = OctKey.import_key(stored.public_jwk.encode())
    header = {"alg": "HS256", "kid": stored.kid, "typ": "token-introspection+jwt"}
    forged = jws.serialize_compact(
        header, json.dumps(claims).encode(), secret, algorithms=["HS256"]
    )
    with pytest.raises(ResponseRefused):
        ij.verify_response(forged, keys, Expected(ISSUER, RS), time.time())


def test_unknown_kid_and_oversize() -> None:
    """A kid the JWKS lacks is `UnknownSigningKey` (worth a refetch); a huge body is refused."""
    token, _ = _signed()
    _, _, other_keys = _key()
    with pytest.raises(UnknownSigningKey):
        ij.verify_response(token, other_keys, Expected(ISSUER, RS), time.time())
    with pytest.raises(ResponseRefused, match="too large"):
        ij.verify_response("a" * (ij.MAX_RESPONSE_BYTES + 1), other_keys, Expected(ISSUER, RS), 0)


def test_algorithm_restriction() -> None:
    """A resource server limited to ES256 refuses an RS256 answer."""
    token, keys = _signed(alg="RS256")
    with pytest.raises(ResponseRefused):
        ij.verify_response(token, keys, Expected(ISSUER, RS, ("ES256",)), time.time())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_accept_field_is_answered(accept: str) -> None:
    """No Accept value makes negotiation raise: the answer is a yes or a no."""
    assert ij.wants_jwt(accept) in (True, False)


def _dotted(raw: bytes) -> str:
    third = len(raw) // 3
    parts = (raw[:third], raw[third : 2 * third], raw[2 * third :])
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400).map(_dotted)))
def test_garbage_is_refused(body: str) -> None:
    """Malformed responses (any text, any three base64url segments) are only ever refused."""
    _, _, keys = _key()
    with pytest.raises(ResponseRefused):
        ij.verify_response(body, keys, Expected(ISSUER, RS), time.time())
