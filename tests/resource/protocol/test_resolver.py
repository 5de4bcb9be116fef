"""Token resolution from headers (RFC 6750 §2.1, §3.1)."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.errors import BearerError, InvalidRequest, MissingToken
from tokengate.resource.protocol.resolver import MAX_TOKEN_LENGTH, resolve_token

RFC_TOKEN = "mF_9.B5f-4.1JqM"  # RFC 6750 §2.1 example


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
def test_resolves_the_token(headers: list[tuple[str, str]], expected: str) -> None:
    """A single token is found in the custom header or the Bearer header."""
    assert resolve_token(headers) == expected


def test_custom_header_name_is_configurable() -> None:
    """Any header name can carry the token, e.g. X-Auth-Token."""
    assert resolve_token([("X-Auth-Token", "abc")], token_header="X-Auth-Token") == "abc"
    with pytest.raises(MissingToken):
        resolve_token([("X-Access-Token", "abc")], token_header="X-Auth-Token")


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
def test_no_token_is_a_401_without_error_code(headers: list[tuple[str, str]]) -> None:
    """RFC 6750 §3.1: a request without credentials gets no error code."""
    with pytest.raises(MissingToken) as caught:
        resolve_token(headers)
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
def test_malformed_or_ambiguous_is_invalid_request(headers: list[tuple[str, str]]) -> None:
    """Malformed values and more than one differing token are `invalid_request` (400)."""
    with pytest.raises(InvalidRequest) as caught:
        resolve_token(headers)
    assert caught.value.status_code == 400
    assert caught.value.error == "invalid_request"


def test_errors_never_echo_the_token() -> None:
    """No message built from a bad header contains its value."""
    secret = "supersecret-token-value"
    for headers in (
        [("Authorization", f"Bearer {secret} extra")],
        [("X-Access-Token", secret), ("Authorization", "Bearer other")],
        [("X-Access-Token", f"{secret} x")],
    ):
        with pytest.raises(BearerError) as caught:
            resolve_token(headers)
        assert secret not in str(caught.value)
        assert secret not in caught.value.description
