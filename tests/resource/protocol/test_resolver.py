"""Token resolution from headers (RFC 6750 §2.1, §3.1).

Every vector runs through `resolve_token` (decoded pairs: FastAPI, WSGI) and `RawTokenReader`
(raw ASGI headers: the ASGI adapter and the decision service), with names lower-cased as an
ASGI server sends them and as the client wrote them: the fast path must answer exactly alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tokengate.resource.protocol.errors import BearerError, InvalidRequest, MissingToken
from tokengate.resource.protocol.resolver import (
    DEFAULT_TOKEN_HEADER,
    MAX_TOKEN_LENGTH,
    RawTokenReader,
    resolve_token,
)

RFC_TOKEN = "mF_9.B5f-4.1JqM"  # RFC 6750 §2.1 example
Resolve = Callable[..., str]


def _raw(lower: bool) -> Resolve:
    def resolve(headers: list[tuple[str, str]], token_header: str = DEFAULT_TOKEN_HEADER) -> str:
        raw = [
            ((name.lower() if lower else name).encode("latin-1"), value.encode("latin-1"))
            for name, value in headers
        ]
        return RawTokenReader(token_header)(raw)

    return resolve


@pytest.fixture(
    params=[
        pytest.param(resolve_token, id="pairs"),
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
    """A single token is found in the custom header or the Bearer header."""
    assert resolve(headers) == expected


def test_custom_header_name_is_configurable(resolve: Resolve) -> None:
    """Any header name can carry the token, e.g. X-Auth-Token."""
    assert resolve([("X-Auth-Token", "abc")], token_header="X-Auth-Token") == "abc"
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
