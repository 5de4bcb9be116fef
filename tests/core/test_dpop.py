"""DPoP proofs (RFC 9449 §4.2, §4.3), thumbprints (RFC 7638) and `ath`: every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokengate.core import dpop
from tokengate.resource.testing import DPoPKey

NOW = 1_562_262_616  # RFC 9449 §4.1 example `iat`
URL = "https://server.example.com/token"
EC = ECKey.generate_key("P-256")
RSA = RSAKey.generate_key(2048)
OKP = OKPKey.generate_key("Ed25519")
# RFC 9449 §4.1 example proof, its key's thumbprint (§6.1) and the §7.1 example token and ath.
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNo"
    "UklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERW"
    "clUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0"
    "dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-F"
    "dWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC_JWK = {
    "kty": "EC", "crv": "P-256",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
}  # fmt: skip
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
RFC_TOKEN, RFC_ATH = (
    "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU",
    "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
)


def claims(**changes: Any) -> dict[str, Any]:
    """Valid §4.2 claims for POST URL at NOW, with `changes` (None deletes a claim)."""
    base: dict[str, Any] = {"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URL, "iat": NOW}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: Any, key: Any = EC, alg: str = "ES256", **header: Any) -> str:
    """A compact JWS made with joserfc, `jwk` the public key unless `header` says otherwise."""
    protected = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False), **header}
    protected = {k: v for k, v in protected.items() if v is not None}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jws.serialize_compact(protected, body, key, algorithms=[alg])


def b64(data: bytes) -> str:
    """base64url, unpadded."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(proof: str, **options: Any) -> dpop.VerifiedProof:
    """Verify as the token endpoint would, at NOW for POST URL."""
    arguments: dict[str, Any] = {"method": "POST", "url": URL, "now": NOW, **options}
    return dpop.verify_proof(proof, **arguments)


def test_rfc9449_example_proof() -> None:
    """The RFC's §4.1 example proof verifies and binds to the §6.1 example thumbprint."""
    verified = verify(RFC_PROOF)
    assert verified == dpop.VerifiedProof(RFC_JKT, "-BwC3ESc6acc2lTc", NOW, NOW + 300)


def test_rfc7638_thumbprint() -> None:
    """The thumbprint uses only the required members, whatever else the JWK holds."""
    assert dpop.thumbprint({**RFC_JWK, "kid": "x", "use": "sig"}) == RFC_JKT
    assert dpop.thumbprint(RSA.as_dict(private=False)) == RSA.thumbprint()
    assert dpop.thumbprint(OKP.as_dict(private=False)) == OKP.thumbprint()


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({"kty": "oct", "k": "AA"}, id="oct"),
        pytest.param({"kty": "EC", "x": "a"}, id="no-y"),
    ],
)
def test_thumbprint_refuses_incomplete_keys(jwk: dict[str, Any]) -> None:
    """A JWK without RFC 7638's required members has no thumbprint."""
    with pytest.raises(ValueError, match="thumbprint"):
        dpop.thumbprint(jwk)


def test_rfc9449_example_ath() -> None:
    """`ath` of the §7.1 example token is the RFC's value."""
    assert dpop.access_token_hash(RFC_TOKEN) == RFC_ATH


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        pytest.param(EC, "ES256", id="rfc7518-3.4-ES256"),
        pytest.param(RSA, "RS256", id="rfc7518-3.3-RS256"),
        pytest.param(RSA, "PS256", id="rfc7518-3.5-PS256"),
        pytest.param(OKP, "EdDSA", id="rfc8037-3.1-EdDSA"),
    ],
)
def test_each_algorithm_verifies(key: Any, alg: str) -> None:
    """A valid proof of every supported algorithm binds to its key's thumbprint."""
    verified = verify(sign(claims(), key, alg))
    assert verified.jkt == key.thumbprint()
    assert (verified.jti, verified.issued_at, verified.replay_until) == (
        "e1j3V_bKic8-LAEB",
        NOW,
        NOW + 300,
    )


def test_ath_and_nonce_accepted() -> None:
    """`ath` of the given token and a nonce the caller accepts pass."""
    proof = sign(claims(ath=dpop.access_token_hash("tok"), nonce="n-1"))
    assert verify(proof, access_token="tok", nonce=lambda n: n == "n-1").jkt == EC.thumbprint()


def alg_confusion_hs256() -> str:
    """HS256 with the public JWK's JSON as the HMAC secret."""
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": EC.as_dict(private=False)}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims()).encode())
    secret = json.dumps(EC.as_dict(private=False)).encode()
    return (
        signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    )


def alg_none() -> str:
    """An unsigned proof."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": EC.as_dict(private=False)}
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims()).encode()) + "."


def other_key_signature() -> str:
    """The header's jwk is one key, the signature made with another."""
    return sign(claims(), EC, "ES256", jwk=ECKey.generate_key("P-256").as_dict(private=False))


REFUSED = [
    pytest.param("", "compact JWS", id="empty"),
    pytest.param("a.b", "compact JWS", id="two-parts"),
    pytest.param("a.b.c.d.e", "compact JWS", id="jwe-shape"),
    pytest.param("x" * (dpop.MAX_PROOF_LENGTH + 1), "too large", id="oversized"),
    pytest.param("é.é.é", "not a valid JWS", id="non-ascii"),
    pytest.param("!!.!!.!!", "not a valid JWS", id="not-base64"),
    pytest.param(alg_none(), "alg", id="alg-none"),
    pytest.param(alg_confusion_hs256(), "alg", id="alg-confusion-HS256"),
    pytest.param(sign(claims(), typ="JWT"), "typ", id="typ-JWT"),
    pytest.param(sign(claims(), typ=None), "typ", id="typ-missing"),
    pytest.param(sign(claims(), jwk=None), "jwk", id="jwk-missing"),
    pytest.param(sign(claims(), jwk=EC.as_dict(private=True)), "jwk", id="jwk-private-EC"),
    pytest.param(
        sign(claims(), RSA, "RS256", jwk=RSA.as_dict(private=True)), "jwk", id="jwk-private-RSA"
    ),
    pytest.param(sign(claims(), jwk={"kty": "oct", "k": "c2VjcmV0"}), "jwk", id="jwk-oct"),
    pytest.param(sign(claims(), jwk=RSA.as_dict(private=False)), "alg", id="jwk-kind-not-alg"),
    pytest.param(
        sign(claims(), jwk={**EC.as_dict(private=False), "crv": "]-256"}),
        "jwk",
        id="jwk-unknown-crv",
    ),
    pytest.param(
        sign(claims(), jwk={**EC.as_dict(private=False), "crv": "P-384"}), "jwk", id="jwk-P-384"
    ),
    pytest.param(sign(claims(), kid="k1"), "not allowed", id="header-kid"),
    pytest.param(sign(claims(), crit=["b64"], b64=True), "not allowed", id="header-crit"),
    pytest.param(other_key_signature(), "signature", id="signed-by-another-key"),
    pytest.param(sign(b"not json"), "JSON object", id="payload-not-json"),
    pytest.param(sign([1, 2]), "JSON object", id="payload-array"),
    pytest.param(sign(b"[" * 5000), "JSON object", id="payload-nested-deep"),
    pytest.param(b64(b"[" * 5000) + ".e30.c2ln", "not a valid JWS", id="header-nested-deep"),
    pytest.param(sign(claims(jti=None)), "jti", id="jti-missing"),
    pytest.param(sign(claims(jti="")), "jti", id="jti-empty"),
    pytest.param(sign(claims(jti="j" * 513)), "jti", id="jti-too-long"),
    pytest.param(sign(claims(htm="post")), "htm", id="htm-case"),
    pytest.param(sign(claims(htm=None)), "htm", id="htm-missing"),
    pytest.param(sign(claims(htu="https://server.example.com/other")), "htu", id="htu-other-path"),
    pytest.param(sign(claims(htu="https://evil.example/token")), "htu", id="htu-other-host"),
    pytest.param(sign(claims(htu="http://server.example.com/token")), "htu", id="htu-other-scheme"),
    pytest.param(
        sign(claims(htu="https://server.example.com:8443/token")), "htu", id="htu-other-port"
    ),
    pytest.param(sign(claims(htu="not a url")), "htu", id="htu-not-url"),
    pytest.param(sign(claims(htu=7)), "htu", id="htu-number"),
    pytest.param(sign(claims(iat=None)), "iat", id="iat-missing"),
    pytest.param(sign(claims(iat="1562262616")), "iat", id="iat-string"),
    pytest.param(sign(claims(iat=True)), "iat", id="iat-bool"),
    pytest.param(sign(claims(iat=NOW + 31)), "future", id="iat-beyond-skew"),
    pytest.param(sign(claims(iat=NOW - 301)), "too old", id="iat-beyond-max-age"),
]


@pytest.mark.parametrize(("proof", "reason"), REFUSED)
def test_refused(proof: str, reason: str) -> None:
    """Each malformed, confused or stale proof is refused, and says why."""
    with pytest.raises(dpop.ProofRefused, match=reason) as caught:
        verify(proof)
    assert type(caught.value) is dpop.ProofRefused


def test_clock_skew_and_max_age_bounds() -> None:
    """`iat` up to clock_skew ahead and max_age behind is accepted; both are configurable."""
    assert verify(sign(claims(iat=NOW + 30))).replay_until == NOW + 330
    assert verify(sign(claims(iat=NOW - 300))).issued_at == NOW - 300
    with pytest.raises(dpop.ProofRefused, match="too old"):
        verify(sign(claims(iat=NOW - 61)), max_age=60)
    with pytest.raises(dpop.ProofRefused, match="future"):
        verify(sign(claims(iat=NOW + 1)), clock_skew=0)


def test_htu_ignores_query_fragment_and_normalises() -> None:
    """`htu` is compared without query and fragment, after RFC 3986 normalisation (§4.3 step 9)."""
    proof = sign(claims(htu="HTTPS://Server.Example.COM:443/./%74oken?x=1#f"))
    assert verify(proof, url=URL + "?grant_type=x").jti == "e1j3V_bKic8-LAEB"


@pytest.mark.parametrize(
    ("token", "ath"),
    [
        pytest.param("tok", None, id="ath-missing"),
        pytest.param("tok", dpop.access_token_hash("other"), id="ath-other-token"),
        pytest.param("tok", "tok", id="ath-raw-token"),
    ],
)
def test_ath_mismatch_refused(token: str, ath: str | None) -> None:
    """With an access token given, `ath` must be its hash (§4.3 step 12)."""
    with pytest.raises(dpop.ProofRefused, match="ath"):
        verify(sign(claims(ath=ath)), access_token=token)


@pytest.mark.parametrize(
    "nonce",
    [
        pytest.param(None, id="missing"),
        pytest.param("stale", id="stale"),
        pytest.param(42, id="number"),
        pytest.param("", id="empty"),
    ],
)
def test_nonce_required(nonce: Any) -> None:
    """When the caller wants a nonce, a missing or refused one is `NonceRequired` (§8)."""
    with pytest.raises(dpop.NonceRequired):
        verify(sign(claims(nonce=nonce)), nonce=lambda n: n == "fresh")


def test_algorithms_narrow_but_never_widen() -> None:
    """`algorithms` can narrow the accepted set; a symmetric name in it is still refused."""
    with pytest.raises(dpop.ProofRefused, match="alg"):
        verify(sign(claims()), algorithms=("RS256",))
    with pytest.raises(dpop.ProofRefused, match="alg"):
        verify(alg_confusion_hs256(), algorithms=("HS256", "ES256"))
    assert verify(sign(claims(), RSA, "RS256"), algorithms=("RS256",)).jkt == RSA.thumbprint()


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        pytest.param(
            "HTTPS://Server.Example.COM:443/a/./b/../c?q#f",
            "https://server.example.com/a/c",
            id="case-port-dots",
        ),
        pytest.param("http://h:80", "http://h/", id="default-port-empty-path"),
        pytest.param("http://h:8080/%7euser/%2f", "http://h:8080/~user/%2F", id="percent-encoding"),
        pytest.param("http://[::1]:9/x", "http://[::1]:9/x", id="ipv6"),
        pytest.param("http://h/a/b/..", "http://h/a/", id="trailing-dot-dot"),
        pytest.param("http://h/a//b", "http://h/a//b", id="empty-segment-kept"),
    ],
)
def test_normalize_htu(url: str, normal: str) -> None:
    """RFC 3986 §6.2.2 and §6.2.3 normalisation, query and fragment dropped."""
    assert dpop.normalize_htu(url) == normal


@pytest.mark.parametrize("url", ["ftp://h/", "http:///x", "http://h:99999/", "//h/x", "h/x"])
def test_normalize_htu_refuses_non_http_urls(url: str) -> None:
    """Only absolute http(s) URLs with a host and a valid port are URLs a proof can name."""
    with pytest.raises(dpop.ProofRefused, match="htu"):
        dpop.normalize_htu(url)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_any_text_is_refused(text: str) -> None:
    """Arbitrary text is refused with a documented error, never anything else."""
    with pytest.raises(dpop.ProofRefused):
        verify(text)


VALID = sign(claims())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.characters(codec="ascii"))
def test_fuzz_mutated_proof(position: int, char: str) -> None:
    """A proof with one character changed is either still the same valid proof or refused."""
    mutated = VALID[:position] + char + VALID[position + 1 :]
    try:
        verified = verify(mutated)
    except dpop.ProofRefused:
        return
    assert verified.jkt == EC.thumbprint()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), JSON))
def test_fuzz_claims(payload: dict[str, Any]) -> None:
    """Signed proofs with arbitrary claim values are verified or refused, never crash."""
    try:
        verify(sign(payload), access_token="tok", nonce=lambda n: n == "ok")
    except dpop.ProofRefused:
        return


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "kid", "b64", "x5u"]), JSON))
def test_fuzz_headers(header: dict[str, Any]) -> None:
    """Proofs whose header is arbitrary JSON are refused with a documented error."""
    segment = b64(json.dumps(header).encode())
    with pytest.raises(dpop.ProofRefused):
        verify(segment + "." + b64(json.dumps(claims()).encode()) + "." + b64(b"sig"))


def test_a_remembered_key_still_needs_a_good_signature() -> None:
    """After a good proof, a proof with the same header (so the same remembered key) and a
    tampered payload or signature is still refused."""
    key, url, now = DPoPKey(), "https://rs.example/a", time.time()
    assert dpop.verify_proof(key.proof("GET", url), method="GET", url=url, now=now).jkt == key.jkt
    header, payload, signature = key.proof("GET", url).split(".")
    other_payload = key.proof("POST", url).split(".")[1]
    forged = {
        "POST": f"{header}.{other_payload}.{signature}",
        "GET": f"{header}.{payload}.x{signature[1:]}",
    }
    for method, proof in forged.items():
        with pytest.raises(dpop.ProofRefused, match="signature"):
            dpop.verify_proof(proof, method=method, url=url, now=now)


def test_the_key_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proofs from more keys than the memo holds keep it within its bound."""
    monkeypatch.setattr(dpop, "KEY_MEMO_ENTRIES", 3)
    url = "https://rs.example/a"
    for _ in range(7):
        key = DPoPKey()
        proof = key.proof("GET", url)
        assert dpop.verify_proof(proof, method="GET", url=url, now=time.time()).jkt == key.jkt
        assert len(dpop._KEYS) <= 3
