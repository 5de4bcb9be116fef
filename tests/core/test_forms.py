"""Strict form parsing (RFC 6749 §3.1, §3.2; RFC 8707 §2)."""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokengate.core.errors import InvalidRequest, OAuthError, UnsupportedMediaType
from tokengate.core.forms import check_content_type, parse_form


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b"grant_type=client_credentials", {"grant_type": ["client_credentials"]}, id="simple"
        ),
        pytest.param(b"scope=read+write", {"scope": ["read write"]}, id="plus-is-space"),
        pytest.param(b"scope=read%20write", {"scope": ["read write"]}, id="percent-space"),
        pytest.param(b"scope=&a=1", {"a": ["1"]}, id="rfc6749-3.1-empty-is-omitted"),
        pytest.param(
            b"resource=a%3A1&resource=b%3A2", {"resource": ["a:1", "b:2"]}, id="rfc8707-repeat"
        ),
        pytest.param(b"", {}, id="empty"),
    ],
)
def test_parse(body: bytes, expected: dict[str, list[str]]) -> None:
    """Valid bodies decode as specified."""
    assert parse_form(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"a=1&a=2", id="rfc6749-3.2-repeat"),
        pytest.param(b"a=%FF", id="bad-utf8"),
        pytest.param("a=é".encode(), id="raw-non-ascii"),
        pytest.param(b"&".join(b"k%d=v" % i for i in range(100)), id="too-many"),
    ],
)
def test_reject(body: bytes) -> None:
    """Ambiguous or undecodable bodies are invalid_request."""
    with pytest.raises(InvalidRequest):
        parse_form(body)


@pytest.mark.parametrize(
    "value",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        'Application/X-WWW-Form-Urlencoded;charset="utf-8"',
    ],
)
def test_content_type_accepted(value: str) -> None:
    """Form encoding with an optional UTF-8 charset."""
    check_content_type(value)


@pytest.mark.parametrize(
    "value",
    [None, "application/json", "text/plain", "application/x-www-form-urlencoded; charset=latin-1"],
)
def test_content_type_rejected(value: str | None) -> None:
    """Anything else is 415."""
    with pytest.raises(UnsupportedMediaType):
        check_content_type(value)


@given(
    st.dictionaries(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=50), max_size=10)
)
def test_roundtrip(fields: dict[str, str]) -> None:
    """Any form urlencode produces parses back to the same fields."""
    assert parse_form(urlencode(fields).encode()) == {k: [v] for k, v in fields.items()}


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    """Random bytes yield a dict or an OAuthError, nothing else."""
    with contextlib.suppress(OAuthError):
        parse_form(body)
