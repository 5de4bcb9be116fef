"""The resource server's part of DPoP (RFC 9449 §4.3, §6.2, §7): the URL a proof must name,
the proof checks as `invalid_dpop_proof`, the key binding, and the challenges."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.claims import parse_claims
from tokengate.resource.protocol.decision import authorize, check_binding
from tokengate.resource.protocol.dpop import (
    ProofPolicy,
    check_proof,
    parse_origin,
    replay_key,
    request_url,
)
from tokengate.resource.protocol.errors import (
    DPOP,
    InsufficientScope,
    IntrospectionError,
    InvalidDPoPProof,
    InvalidToken,
    MissingToken,
)
from tokengate.resource.protocol.resolver import Presented
from tokengate.resource.protocol.responses import render_error
from tokengate.resource.testing import DPoPKey, claims

NOW = 1_700_000_000.0
URL = "https://rs.example/auth-api/hello"
TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # RFC 9449 §7.1 example
POLICY = ProofPolicy()
ALGS = "ES256 RS256 PS256 EdDSA"


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    """One client key for the module (EC keys are cheap, RSA ones are not)."""
    return DPoPKey()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("https://RS.example", "https://rs.example", id="host-case"),
        pytest.param("https://rs.example:443", "https://rs.example", id="default-port"),
        pytest.param("http://rs.example:80", "http://rs.example", id="default-port-http"),
        pytest.param("http://rs.example:8080", "http://rs.example:8080", id="port-kept"),
        pytest.param("http://[::1]:8080", "http://[::1]:8080", id="ipv6"),
        pytest.param("ftp://rs.example", None, id="not-http"),
        pytest.param("https://rs.example/path", None, id="path"),
        pytest.param("https://user@rs.example", None, id="userinfo"),
        pytest.param("rs.example", None, id="no-scheme"),
        pytest.param("https://", None, id="no-host"),
    ],
)
def test_origins_are_normalized(text: str, expected: str | None) -> None:
    """An origin is scheme://host[:port], lower-cased, without its default port."""
    assert parse_origin(text) == expected


def test_request_url_from_the_request_itself() -> None:
    """Without configured origins the request's own scheme and Host make the URL."""
    assert request_url("https", "RS.example:443", "/a%2Fb") == "https://rs.example/a%2Fb"


def test_request_url_checks_configured_origins() -> None:
    """A request for another origin is refused; a request naming none uses the only one."""
    allowed = ProofPolicy(origins=("https://rs.example",)).allowed_origins
    assert request_url("https", "rs.example", "/x", allowed) == "https://rs.example/x"
    assert request_url(None, None, "/x", allowed) == "https://rs.example/x"
    with pytest.raises(InvalidDPoPProof):
        request_url("https", "evil.example", "/x", allowed)


@pytest.mark.parametrize(
    ("scheme", "host"),
    [
        pytest.param(None, "rs.example", id="no-scheme"),
        pytest.param("https", None, id="no-host"),
        pytest.param("gopher", "rs.example", id="odd-scheme"),
        pytest.param("https", "rs.example/x", id="host-with-path"),
    ],
)
def test_an_unknown_origin_fails_closed(scheme: str | None, host: str | None) -> None:
    """When the request's origin cannot be told, no proof can match: invalid_dpop_proof."""
    with pytest.raises(InvalidDPoPProof):
        request_url(scheme, host, "/x")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"algorithms": ()}, id="no-algorithms"),
        pytest.param({"algorithms": ("HS256",)}, id="hmac"),
        pytest.param({"max_age": 0}, id="zero-age"),
        pytest.param({"clock_skew": -1}, id="negative-skew"),
        pytest.param({"origins": ("rs.example",)}, id="not-an-origin"),
    ],
)
def test_a_bad_policy_is_refused_when_built(bad: dict[str, object]) -> None:
    """Fail closed at construction: no HMAC, a positive window, real origins."""
    with pytest.raises(ValueError, match=r"DPoP|origin"):
        ProofPolicy(**bad)  # type: ignore[arg-type]


def test_a_good_proof_passes_and_names_its_key(key: DPoPKey) -> None:
    """RFC 9449 §4.3: htm, htu, iat and ath checked; the result names the key and the jti."""
    proof = key.proof("GET", URL, token=TOKEN, iat=NOW, jti="j1")
    verified = check_proof(
        Presented(TOKEN, proof, DPOP), method="GET", url=URL, now=NOW, policy=POLICY
    )
    assert verified.jkt == key.jkt
    assert replay_key(verified) == f"{key.jkt}:j1"
    assert verified.replay_until >= NOW + POLICY.max_age


@pytest.mark.parametrize(
    ("method", "url", "token", "iat"),
    [
        pytest.param("POST", URL, TOKEN, NOW, id="rfc9449-4.3-htm"),
        pytest.param("GET", "https://rs.example/other", TOKEN, NOW, id="rfc9449-4.3-htu"),
        pytest.param("GET", "https://other.example/auth-api/hello", TOKEN, NOW, id="htu-host"),
        pytest.param("GET", URL, "another-token", NOW, id="rfc9449-4.3-ath"),
        pytest.param("GET", URL, TOKEN, NOW - 121, id="rfc9449-4.3-iat-old"),
        pytest.param("GET", URL, TOKEN, NOW + 31, id="rfc9449-4.3-iat-future"),
    ],
)
def test_a_proof_for_something_else_is_invalid_dpop_proof(
    key: DPoPKey, method: str, url: str, token: str, iat: float
) -> None:
    """A proof made for another method, URL, token or time is refused with the DPoP scheme."""
    proof = key.proof(method, url, token=token, iat=iat)
    with pytest.raises(InvalidDPoPProof) as caught:
        check_proof(Presented(TOKEN, proof, DPOP), method="GET", url=URL, now=NOW, policy=POLICY)
    assert caught.value.status_code == 401
    assert caught.value.scheme == DPOP


def test_a_proof_without_ath_is_refused(key: DPoPKey) -> None:
    """RFC 9449 §7: a proof sent with an access token must carry its hash."""
    proof = key.proof("GET", URL, iat=NOW)
    with pytest.raises(InvalidDPoPProof):
        check_proof(Presented(TOKEN, proof, DPOP), method="GET", url=URL, now=NOW, policy=POLICY)


def test_an_algorithm_not_allowed_is_refused() -> None:
    """Only the policy's algorithms pass (here ES256 only, so an EdDSA proof does not)."""
    proof = DPoPKey("EdDSA").proof("GET", URL, token=TOKEN, iat=NOW)
    only_es256 = ProofPolicy(algorithms=("ES256",))
    with pytest.raises(InvalidDPoPProof):
        check_proof(
            Presented(TOKEN, proof, DPOP), method="GET", url=URL, now=NOW, policy=only_es256
        )


def test_introspection_cnf_is_read() -> None:
    """RFC 9449 §6.2: `cnf.jkt` and `token_type` DPoP make the token sender-constrained."""
    bound = claims(cnf={"jkt": "abc"}, token_type="DPoP")
    assert (bound.jkt, bound.sender_constrained) == ("abc", True)
    assert bound.to_dict()["cnf"] == {"jkt": "abc"}
    unknown_method = claims(cnf={"x5t#S256": "xyz"})
    assert (unknown_method.jkt, unknown_method.sender_constrained) == (None, True)
    assert claims(token_type="dpop").sender_constrained
    assert not claims(token_type="Bearer").sender_constrained


@pytest.mark.parametrize(
    "cnf",
    [pytest.param("abc", id="not-an-object"), pytest.param({"jkt": 1}, id="jkt-not-a-string")],
)
def test_a_malformed_cnf_makes_the_answer_unusable(cnf: object) -> None:
    """A binding that cannot be read is never taken for no binding."""
    with pytest.raises(IntrospectionError):
        parse_claims({"active": True, "cnf": cnf})


def test_a_bound_token_as_bearer_is_invalid_token() -> None:
    """RFC 9449 §7.2: a DPoP-bound token received as a bearer token is rejected."""
    with pytest.raises(InvalidToken) as caught:
        check_binding(claims(cnf={"jkt": "abc"}), None)
    assert caught.value.scheme == "Bearer"


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({}, id="rfc9449-7.1-unbound-token"),
        pytest.param({"cnf": {"jkt": "another-key"}}, id="rfc9449-7.1-other-key"),
        pytest.param({"cnf": {"x5t#S256": "xyz"}}, id="mtls-bound"),
    ],
)
def test_a_proof_by_another_key_is_invalid_token(members: dict[str, object]) -> None:
    """RFC 9449 §7.1: the proof's key must be the one the token is bound to."""
    with pytest.raises(InvalidToken) as caught:
        check_binding(claims(**members), "abc")
    assert caught.value.scheme == DPOP


def test_binding_comes_before_scopes() -> None:
    """A bound token as bearer is a 401, even where its scopes would also fail (403)."""
    with pytest.raises(InvalidToken):
        authorize(claims(cnf={"jkt": "k"}), required_scopes=["write"], now=NOW)
    with pytest.raises(InsufficientScope):
        authorize(claims(cnf={"jkt": "k"}), required_scopes=["write"], now=NOW, jkt="k")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            MissingToken(),
            f'Bearer realm="r", DPoP realm="r", algs="{ALGS}"',
            id="rfc9449-7.1-no-token",
        ),
        pytest.param(
            InvalidToken("bound"),
            f'Bearer realm="r", error="invalid_token", error_description="bound", '
            f'DPoP realm="r", algs="{ALGS}"',
            id="bearer-error",
        ),
        pytest.param(
            InvalidDPoPProof('bad "htu"'),
            f'DPoP realm="r", error="invalid_dpop_proof", error_description="bad ?htu?", '
            f'algs="{ALGS}", Bearer realm="r"',
            id="rfc9449-7.1-invalid-dpop-proof",
        ),
        pytest.param(
            InsufficientScope("lacks", scope="write", scheme=DPOP),
            f'DPoP realm="r", error="insufficient_scope", error_description="lacks", '
            f'scope="write", algs="{ALGS}", Bearer realm="r"',
            id="dpop-insufficient-scope",
        ),
    ],
)
def test_challenges_offer_both_schemes(error: MissingToken, expected: str) -> None:
    """RFC 9449 §7.1: `DPoP algs=...` beside `Bearer`, the error in the scheme used, made safe."""
    response = render_error(error, "r", ALGS)
    assert response.header("www-authenticate") == expected
