"""private_key_jwt client assertions (RFC 7523 §2.2, §3; RFC 7521 §4.2): every refusal."""

from __future__ import annotations

import base64
import hmac
import json
import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from tests.core.records import ISSUER, NOW, REALM, make_client
from tokengate.core import client_assertion as ca
from tokengate.core.client_auth import (
    PresentedAssertion,
    authenticate,
    check_assertion_client,
    presented_credentials,
)
from tokengate.core.errors import InvalidClient, InvalidRequest

CLIENT_ID = "tgc_pkjwt"
TOKEN_URL = ISSUER + "/oauth2/token"
AUDIENCES = frozenset({ISSUER, TOKEN_URL})
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
OKP = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
KEYS = ca.parse_jwks({"keys": [k.as_dict(private=False) for k in (RSA, EC, OKP)]})


def claims(**changes: Any) -> dict[str, Any]:
    """Valid RFC 7523 §3 claims at NOW, with `changes` (None deletes a claim)."""
    base: dict[str, Any] = {
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_URL, "iat": NOW, "exp": NOW + 60,
        "jti": "a1b2c3",
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = RSA, alg: str = "RS256", **header: Any) -> str:
    """A compact JWS made with joserfc (EdDSA's deprecation warning silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"alg": alg, "kid": key.kid, **header}, payload, key, algorithms=[alg])


def b64(data: dict[str, Any]) -> str:
    """base64url of a JSON object, unpadded."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verify(assertion: str, keys: KeySet = KEYS, now: float = NOW) -> ca.VerifiedAssertion:
    """Verify as the token endpoint would."""
    return ca.verify_assertion(assertion, CLIENT_ID, keys, AUDIENCES, now)


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        pytest.param(RSA, "RS256", id="rfc7518-3.3-RS256"),
        pytest.param(RSA, "PS256", id="rfc7518-3.5-PS256"),
        pytest.param(EC, "ES256", id="rfc7518-3.4-ES256"),
        pytest.param(OKP, "EdDSA", id="rfc8037-3.1-EdDSA"),
    ],
)
def test_each_algorithm_verifies(key: Any, alg: str) -> None:
    """A valid assertion of every supported algorithm leaves its jti and exp (+ skew)."""
    verified = verify(sign(claims(), key, alg))
    assert verified == ca.VerifiedAssertion(CLIENT_ID, "a1b2c3", NOW + 60 + ca.CLOCK_SKEW)


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(ISSUER, id="issuer"),
        pytest.param([TOKEN_URL, "https://other.example"], id="list-with-token-endpoint"),
    ],
)
def test_audience_may_be_issuer_or_endpoint(aud: Any) -> None:
    """§3 item 3: `aud` identifies the authorization server (issuer or token endpoint)."""
    assert verify(sign(claims(aud=aud))).jti == "a1b2c3"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(claims(iss="tgc_other"), "iss and sub", id="rfc7523-3.1-wrong-iss"),
        pytest.param(claims(sub="tgc_other"), "iss and sub", id="rfc7523-3.2-wrong-sub"),
        pytest.param(claims(iss=None), "iss and sub", id="rfc7523-3.1-no-iss"),
        pytest.param(claims(aud="https://rs.example"), "aud", id="rfc7523-3.3-wrong-aud"),
        pytest.param(claims(aud=None), "aud", id="rfc7523-3.3-no-aud"),
        pytest.param(claims(exp=None), "exp", id="rfc7523-3.4-no-exp"),
        pytest.param(claims(exp="soon"), "exp", id="rfc7523-3.4-exp-not-a-number"),
        pytest.param(
            claims(iat=NOW - 120, exp=NOW - ca.CLOCK_SKEW - 1), "expired", id="rfc7523-3.4-expired"
        ),
        pytest.param(
            claims(exp=NOW + ca.MAX_LIFETIME + ca.CLOCK_SKEW + 1),
            "at most",
            id="lifetime-too-long-from-now",
        ),
        pytest.param(
            claims(iat=NOW - 200, exp=NOW + 200), "at most", id="lifetime-too-long-from-iat"
        ),
        pytest.param(claims(iat=NOW + 120), "iat", id="rfc7523-3.6-iat-in-future"),
        pytest.param(claims(nbf=NOW + 120), "nbf", id="rfc7523-3.5-nbf-in-future"),
        pytest.param(claims(jti=None), "jti", id="rfc7523-3.7-no-jti"),
        pytest.param(claims(jti=""), "jti", id="rfc7523-3.7-empty-jti"),
    ],
)
def test_claim_refusals(payload: dict[str, Any], reason: str) -> None:
    """Each RFC 7523 §3 rule refuses the assertion, saying which."""
    with pytest.raises(ca.AssertionRefused, match=reason):
        verify(sign(payload))


def test_clock_skew_is_tolerated() -> None:
    """An assertion that expired less than CLOCK_SKEW ago, or issued a little ahead, passes."""
    assert verify(sign(claims(iat=NOW + 10, exp=NOW - 10))).jti == "a1b2c3"


def test_alg_none_is_refused() -> None:
    """An unsigned JWT (`alg: none`) never authenticates."""
    unsigned = f"{b64({'alg': 'none'})}.{b64(claims())}."
    with pytest.raises(ca.AssertionRefused, match="none"):
        verify(unsigned)


def test_hmac_with_the_public_key_as_secret_is_refused() -> None:
    """Algorithm confusion: HS256 keyed with the client's public RSA key is refused."""
    # joserfc itself refuses a public key as an HMAC secret, so the attacker's token is made
    # by hand, as an attacker would.
    signing_input = f"{b64({'alg': 'HS256', 'kid': RSA.kid})}.{b64(claims())}"
    mac = hmac.digest(RSA.as_pem(private=False), signing_input.encode(), "sha256")
    forged = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(ca.AssertionRefused, match="HS256"):
        verify(forged)


def test_unknown_kid_is_its_own_refusal() -> None:
    """A kid not in the JWKS raises UnknownKey, so a jwks_uri can be refetched."""
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    with pytest.raises(ca.UnknownKey):
        verify(sign(claims(), stranger))


def test_signature_by_another_key_with_a_known_kid_is_refused() -> None:
    """A key that claims a registered kid but is not that key fails the signature."""
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    with pytest.raises(ca.AssertionRefused, match="signature"):
        verify(sign(claims(), impostor))


def test_deeply_nested_header_is_refused() -> None:
    """A header of JSON nested thousands deep is refused, not a RecursionError (a 500)."""
    header = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    with pytest.raises(ca.AssertionRefused, match="not valid"):
        verify(f"{header}.{b64(claims())}.sig")


def test_oversized_assertion_is_refused() -> None:
    """An assertion over MAX_ASSERTION_LENGTH is refused before any parsing."""
    huge = sign(claims(pad="x" * ca.MAX_ASSERTION_LENGTH))
    with pytest.raises(ca.AssertionRefused, match="too large"):
        verify(huge)
    with pytest.raises(ca.AssertionRefused, match="too large"):
        ca.claimed_client_id(huge)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not-a-jwt", id="one-part"),
        pytest.param("a.b.c.d.e", id="jwe-shape"),
        pytest.param(f"{b64({'alg': 'RS256'})}.!!!.sig", id="payload-not-base64-json"),
        pytest.param(f"{b64({'alg': 'RS256'})}.{b64({'iss': 'x'})}.sig", id="no-sub"),
        pytest.param(
            f"{b64({'alg': 'RS256'})}.{base64.urlsafe_b64encode(b'[' * 5000).decode()}.sig",
            id="payload-nested-deep",
        ),
    ],
)
def test_malformed_assertions_name_no_client(value: str) -> None:
    """RFC 7521 §4.2: a value that is not a JWS with a `sub` names no client."""
    with pytest.raises(ca.AssertionRefused):
        ca.claimed_client_id(value)


# -- the request: exactly one method (RFC 6749 §2.3, RFC 7521 §4.2) ---------------------------


def form(**fields: str) -> dict[str, list[str]]:
    """A parsed form."""
    return {name: [value] for name, value in fields.items()}


def test_assertion_parameters_are_parsed() -> None:
    """§4.2: the client is the one the assertion's sub names."""
    assertion = sign(claims())
    creds = presented_credentials(
        None, form(client_assertion_type=ca.ASSERTION_TYPE, client_assertion=assertion), REALM
    )
    assert creds == PresentedAssertion(CLIENT_ID, assertion)


@pytest.mark.parametrize(
    ("authorization", "fields"),
    [
        pytest.param("Basic YTpi", {}, id="basic-header-and-assertion"),
        pytest.param(None, {"client_secret": "s"}, id="client_secret-and-assertion"),
    ],
)
def test_secret_and_assertion_is_invalid_request(
    authorization: str | None, fields: dict[str, str]
) -> None:
    """RFC 6749 §2.3 / §5.2: more than one method in a request is `invalid_request`."""
    body = form(client_assertion_type=ca.ASSERTION_TYPE, client_assertion=sign(claims()), **fields)
    with pytest.raises(InvalidRequest, match="exactly one"):
        presented_credentials(authorization, body, REALM)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"client_assertion_type": ca.ASSERTION_TYPE}, id="type-without-assertion"),
        pytest.param({"client_assertion": "x.y.z"}, id="assertion-without-type"),
        pytest.param(
            {"client_assertion_type": "urn:example:saml", "client_assertion": "x.y.z"},
            id="rfc7521-4.2-unsupported-type",
        ),
        pytest.param(
            {
                "client_assertion_type": ca.ASSERTION_TYPE,
                "client_assertion": sign(claims()),
                "client_id": "tgc_other",
            },
            id="rfc7521-4.2-client_id-not-sub",
        ),
    ],
)
def test_bad_assertion_parameters_are_invalid_client(fields: dict[str, str]) -> None:
    """Incomplete or inconsistent assertion parameters are `invalid_client` (401)."""
    with pytest.raises(InvalidClient):
        presented_credentials(None, form(**fields), REALM)


def test_assertion_client_must_be_registered_for_it() -> None:
    """A secret client cannot use an assertion, nor an assertion client a secret."""
    secret_client = make_client(client_id=CLIENT_ID)
    with pytest.raises(InvalidClient):
        check_assertion_client(secret_client, REALM)
    with pytest.raises(InvalidClient):
        check_assertion_client(None, REALM)
    jwt_client = make_client(auth_method=ca.METHOD, jwks="{}")
    assert check_assertion_client(jwt_client, REALM) is jwt_client
    basic = presented_credentials("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", {}, REALM)
    with pytest.raises(InvalidClient):
        authenticate(basic, jwt_client, REALM)  # the right secret, but this client has none


# -- JWKS (RFC 7517 §5) at registration ------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param({"keys": [RSA.as_dict(private=True)]}, "public", id="rsa-private-key"),
        pytest.param({"keys": [EC.as_dict(private=True)]}, "public", id="ec-private-key"),
        pytest.param({"keys": [OKP.as_dict(private=True)]}, "public", id="okp-private-key"),
        pytest.param({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "public", id="symmetric-key"),
        pytest.param(
            {"keys": [ECKey.generate_key("P-384").as_dict(private=False)]}, "P-256", id="ec-p384"
        ),
        pytest.param(
            {"keys": [{"kty": "RSA", "n": RSA.as_dict(private=False)["n"]}]},
            "unusable",
            id="rsa-without-e",
        ),
        pytest.param({"keys": [{**EC.as_dict(private=False), "use": "enc"}]}, "sig", id="use-enc"),
        pytest.param(
            {"keys": [{**EC.as_dict(private=False), "crv": "]-256"}]}, "unusable", id="unknown-crv"
        ),
        pytest.param({"keys": []}, "1 to", id="empty"),
        pytest.param({"keys": [EC.as_dict(private=False)] * 21}, "1 to", id="too-many"),
        pytest.param([EC.as_dict(private=False)], "keys", id="not-an-object"),
    ],
)
def test_jwks_refusals(document: object, reason: str) -> None:
    """Only public RSA (≥ 2048 bits), P-256 and Ed25519 signing keys are accepted."""
    with pytest.raises(ca.BadJwks, match=reason):
        ca.parse_jwks(document)


def test_short_rsa_key_is_refused() -> None:
    """An RSA key under 2048 bits is refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = RSAKey.generate_key(1024).as_dict(private=False)
    with pytest.raises(ca.BadJwks, match="2048"):
        ca.parse_jwks({"keys": [short]})


def test_replay_key_separates_clients() -> None:
    """The same jti of two clients gives two keys; the key is a SHA-256 hex digest."""
    a, b = ca.replay_key("tgc_a", "1"), ca.replay_key("tgc_b", "1")
    assert a != b
    assert len(a) == 64
    assert a == ca.replay_key("tgc_a", "1")
