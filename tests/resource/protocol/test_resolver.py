"""Token resolution from headers (RFC 6750 §2.1, §3.1; RFC 9449 §4.1, §7.1).

Every vector runs through `resolve_credentials` (decoded pairs: FastAPI, WSGI) and
`RawCredentialReader`
(raw ASGI headers: the ASGI adapter and the decision service), with names lower-cased as an
ASGI server sends them and as the client wrote them: the fast path must answer exactly alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tokengate.resource.protocol.errors import (
    BearerError,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingToken,
)
from tokengate.resource.protocol.resolver import (
    DEFAULT_TOKEN_HEADER,
    MAX_PROOF_LENGTH,
    MAX_TOKEN_LENGTH,
    Presented,
    RawCredentialReader,
    resolve_credentials,
)

RFC_TOKEN = "mF_9.B5f-4.1JqM"  # RFC 6750 §2.1 example
RFC9449_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # RFC 9449 §7.1 example
PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0.c2ln"  # a shape only: the resolver never checks it
)
Resolve = Callable[..., Presented]


def _raw(lower: bool) -> Resolve:
    def resolve(
        headers: list[tuple[str, str]], token_header: str = DEFAULT_TOKEN_HEADER
    ) -> Presented:
        raw = [
            ((name.lower() if lower else name).encode("latin-1"), value.encode("latin-1"))
            for name, value in headers
        ]
        return RawCredentialReader(token_header)(raw)

    return resolve


@pytest.fixture(
    params=[
        pytest.param(resolve_credentials, id="pairs"),
        pytest.param(_raw(lower=True), id="raw-asgi"),
        pytest.param(_raw(lower=False), id="raw-as-sent"),
    ]
)
def resolve(request: pytest.FixtureRequest) -> Resolve:
    """One of the two resolvers, fed the vector in its own input form."""
    resolver: Resolve = request.param
    return resolver


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [("Authorization", f"Bearer {RFC_TOKEN}")], RFC_TOKEN, id="rfc6750-2.1-bearer"
        ),
        pytest.param([("authorization", f"bearer {RFC_TOKEN}")], RFC_TOKEN, id="scheme-any-case"),
        pytest.param([("Authorization", f"Bearer   {RFC_TOKEN} ")], RFC_TOKEN, id="extra-spaces"),
        pytest.param([("X-Access-Token", RFC_TOKEN)], RFC_TOKEN, id="custom-header"),
        pytest.param([("x-access-token", f" {RFC_TOKEN} ")], RFC_TOKEN, id="custom-header-trimmed"),
        pytest.param(
            [("X-Access-Token", RFC_TOKEN), ("Authorization", f"Bearer {RFC_TOKEN}")],
            RFC_TOKEN,
            id="both-equal",
        ),
        pytest.param(
            [
                ("Authorization", "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"),
                ("X-Access-Token", RFC_TOKEN),
            ],
            RFC_TOKEN,
            id="other-scheme-ignored",
        ),
        pytest.param([("Authorization", "Bearer abc==")], "abc==", id="b64token-padding"),
    ],
)
def test_resolves_the_token(
    resolve: Resolve, headers: list[tuple[str, str]], expected: str
) -> None:
    """A single token is found in the custom header or the Bearer header, as a bearer token."""
    assert resolve(headers) == Presented(expected, None, "Bearer")


def test_custom_header_name_is_configurable(resolve: Resolve) -> None:
    """Any header name can carry the token, e.g. X-Auth-Token."""
    assert resolve([("X-Auth-Token", "abc")], token_header="X-Auth-Token").token == "abc"
    with pytest.raises(MissingToken):
        resolve([("X-Access-Token", "abc")], token_header="X-Auth-Token")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="rfc6750-3-no-token"),
        pytest.param(
            [("Authorization", "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3")],
            id="rfc6750-3-basic-only",
        ),
        pytest.param([("Accept", "application/json")], id="unrelated-headers"),
    ],
)
def test_no_token_is_a_401_without_error_code(
    resolve: Resolve, headers: list[tuple[str, str]]
) -> None:
    """RFC 6750 §3.1: a request without credentials gets no error code."""
    with pytest.raises(MissingToken) as caught:
        resolve(headers)
    assert caught.value.status_code == 401
    assert caught.value.error is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Authorization", "Bearer")], id="rfc6750-3.1-bearer-without-token"),
        pytest.param([("Authorization", "Bearer a b")], id="rfc6750-3.1-two-tokens"),
        pytest.param([("Authorization", "Bearer tök")], id="rfc6750-2.1-not-b64token"),
        pytest.param([("Authorization", "Bearer a=b")], id="rfc6750-2.1-padding-inside"),
        pytest.param([("X-Access-Token", "")], id="empty-custom-header"),
        pytest.param([("X-Access-Token", "Bearer abc")], id="custom-header-with-scheme"),
        pytest.param([("X-Access-Token", "a" * (MAX_TOKEN_LENGTH + 1))], id="too-long"),
        pytest.param(
            [("X-Access-Token", "abc"), ("Authorization", "Bearer xyz")],
            id="rfc6750-3.1-two-methods-differ",
        ),
        pytest.param(
            [("Authorization", "Bearer abc"), ("Authorization", "Bearer abc")],
            id="rfc6750-3.1-repeated-authorization",
        ),
        pytest.param([("X-Access-Token", "abc"), ("X-Access-Token", "abc")], id="repeated-custom"),
        pytest.param([("Authorization", "Bearer abc, Bearer xyz")], id="joined-repeats"),
    ],
)
def test_malformed_or_ambiguous_is_invalid_request(
    resolve: Resolve, headers: list[tuple[str, str]]
) -> None:
    """Malformed values and more than one differing token are `invalid_request` (400)."""
    with pytest.raises(InvalidRequest) as caught:
        resolve(headers)
    assert caught.value.status_code == 400
    assert caught.value.error == "invalid_request"


def test_errors_never_echo_the_token(resolve: Resolve) -> None:
    """No message built from a bad header contains its value."""
    secret = "supersecret-token-value"
    for headers in (
        [("Authorization", f"Bearer {secret} extra")],
        [("X-Access-Token", secret), ("Authorization", "Bearer other")],
        [("X-Access-Token", f"{secret} x")],
    ):
        with pytest.raises(BearerError) as caught:
            resolve(headers)
        assert secret not in str(caught.value)
        assert secret not in caught.value.description


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            [("Authorization", f"DPoP {RFC9449_TOKEN}"), ("DPoP", PROOF)], id="rfc9449-7.1-dpop"
        ),
        pytest.param([("authorization", f"dpop {RFC9449_TOKEN}"), ("dpop", PROOF)], id="any-case"),
        pytest.param([("X-Access-Token", RFC9449_TOKEN), ("DPoP", PROOF)], id="custom-header"),
        pytest.param(
            [
                ("X-Access-Token", RFC9449_TOKEN),
                ("Authorization", f"DPoP {RFC9449_TOKEN}"),
                ("DPoP", f" {PROOF} "),
            ],
            id="both-equal",
        ),
    ],
)
def test_dpop_presentations(resolve: Resolve, headers: list[tuple[str, str]]) -> None:
    """RFC 9449 §7.1: the DPoP scheme (or the custom header) with one proof is DPoP."""
    assert resolve(headers) == Presented(RFC9449_TOKEN, PROOF, "DPoP")


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param(
            [("Authorization", "DPoP abc"), ("DPoP", PROOF), ("DPoP", PROOF)],
            InvalidDPoPProof,
            id="rfc9449-4.3-1-two-proofs",
        ),
        pytest.param(
            [("X-Access-Token", "abc"), ("DPoP", PROOF), ("DPoP", PROOF)],
            InvalidDPoPProof,
            id="two-proofs-custom",
        ),
        pytest.param([("Authorization", "DPoP abc")], InvalidDPoPProof, id="dpop-without-proof"),
        pytest.param(
            [("Authorization", "DPoP abc"), ("DPoP", "")], InvalidDPoPProof, id="empty-proof"
        ),
        pytest.param(
            [("Authorization", "DPoP abc"), ("DPoP", "a" * (MAX_PROOF_LENGTH + 1))],
            InvalidDPoPProof,
            id="oversized-proof",
        ),
        pytest.param(
            [("Authorization", "Bearer abc"), ("DPoP", PROOF)],
            InvalidToken,
            id="rfc9449-7.2-proof-with-bearer",
        ),
        pytest.param(
            [("Authorization", "DPoP abc"), ("Authorization", "Bearer abc"), ("DPoP", PROOF)],
            InvalidRequest,
            id="two-schemes",
        ),
        pytest.param(
            [("Authorization", "DPoP abc"), ("X-Access-Token", "xyz"), ("DPoP", PROOF)],
            InvalidRequest,
            id="two-tokens-differ",
        ),
        pytest.param([("DPoP", PROOF)], MissingToken, id="proof-without-token"),
    ],
)
def test_dpop_refusals(
    resolve: Resolve, headers: list[tuple[str, str]], error: type[BearerError]
) -> None:
    """A proof repeated or missing is invalid_dpop_proof; a proof with Bearer is invalid_token."""
    with pytest.raises(error) as caught:
        resolve(headers)
    assert type(caught.value) is error
    assert caught.value.status_code in (400, 401)
