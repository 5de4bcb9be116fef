"""WWW-Authenticate construction and escaping (RFC 9110 §11.6.1, RFC 6750 §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokengate.core.challenge import basic_challenge, bearer_challenge, quote


def test_bearer_without_error() -> None:
    """RFC 6750 §3: a request without a token gets no error code."""
    assert bearer_challenge("example") == 'Bearer realm="example"'


def test_bearer_with_error_and_scope() -> None:
    """RFC 6750 §3.1 example shape."""
    value = bearer_challenge("example", "insufficient_scope", "needs more", "read write")
    assert value == (
        'Bearer realm="example", error="insufficient_scope", '
        'error_description="needs more", scope="read write"'
    )


def test_basic() -> None:
    """RFC 7617 challenge with charset."""
    assert basic_challenge("tg") == 'Basic realm="tg", charset="UTF-8"'


def test_escaping() -> None:
    """Quotes and backslashes are escaped; CR/LF cannot inject a header."""
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert "\r" not in quote("x\r\nSet-Cookie: y")
    assert "\n" not in quote("x\r\nSet-Cookie: y")


@given(st.text())
def test_quote_is_one_quoted_string(text: str) -> None:
    """Whatever the input, the output is a single well-formed quoted-string."""
    out = quote(text)
    assert out.startswith('"')
    assert out.endswith('"')
    inner, i = out[1:-1], 0
    while i < len(inner):
        if inner[i] == "\\":
            i += 2
            continue
        assert inner[i] != '"'
        assert ord(inner[i]) >= 0x20
        assert inner[i] != "\x7f"
        i += 1


@pytest.mark.parametrize(
    ("error", "description", "scope", "header"),
    [
        pytest.param(
            "invalid_token",
            "The access token expired",
            None,
            'Bearer realm="example", error="invalid_token", '
            'error_description="The access token expired"',
            id="rfc6750-3-expired-token",
        ),
        pytest.param(
            "insufficient_scope",
            None,
            "read write",
            'Bearer realm="example", error="insufficient_scope", scope="read write"',
            id="rfc6750-3.1-insufficient_scope-without-description",
        ),
    ],
)
def test_rfc6750_examples(
    error: str, description: str | None, scope: str | None, header: str
) -> None:
    """RFC 6750 §3: the specification's own `WWW-Authenticate` example, byte for byte."""
    assert bearer_challenge("example", error, description, scope) == header
