"""Scope syntax (RFC 6749 §3.3) and resource indicators (RFC 8707 §2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokengate.core.errors import InvalidScope, InvalidTarget
from tokengate.core.scopes import check_resource, format_scope, is_valid_scope_token, parse_scope

# §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
EVERY_NQCHAR = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
NQCHAR = st.sampled_from(EVERY_NQCHAR)


@pytest.mark.parametrize(
    ("value", "scopes"),
    [
        pytest.param("read", {"read"}, id="one"),
        pytest.param("read write", {"read", "write"}, id="rfc6749-3.3-space-delimited"),
        pytest.param("write read read", {"read", "write"}, id="order-and-repeats-do-not-matter"),
        pytest.param(
            "read write dolphin", {"read", "write", "dolphin"}, id="rfc7662-2.2-example-scope"
        ),
        pytest.param(EVERY_NQCHAR, {EVERY_NQCHAR}, id="every-nqchar-but-quote-and-backslash"),
    ],
)
def test_parse_scope(value: str, scopes: set[str]) -> None:
    """§3.3: a space-delimited list of case-sensitive scope-tokens."""
    assert parse_scope(value) == frozenset(scopes)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("read  write", id="double-space"),
        pytest.param(" read", id="leading-space"),
        pytest.param("read\twrite", id="tab"),
        pytest.param('re"ad', id="double-quote"),
        pytest.param("re\\ad", id="backslash"),
        pytest.param("l\u00e9gal", id="non-ascii"),
    ],
)
def test_malformed_scope_is_invalid_scope(value: str) -> None:
    """§3.3 / §5.2: anything outside the grammar is `invalid_scope`."""
    with pytest.raises(InvalidScope):
        parse_scope(value)


def test_scope_case_is_significant() -> None:
    """§3.3: scope strings are case-sensitive."""
    assert parse_scope("Read read") == frozenset({"Read", "read"})


def test_format_scope_is_sorted() -> None:
    """Rendering is deterministic: sorted, single spaces."""
    assert format_scope(frozenset({"write", "read", "dolphin"})) == "dolphin read write"


@given(st.frozensets(st.text(NQCHAR, min_size=1, max_size=10), min_size=1, max_size=8))
def test_format_then_parse_round_trips(scopes: frozenset[str]) -> None:
    """Any non-empty set of scope-tokens survives rendering and parsing."""
    assert parse_scope(format_scope(scopes)) == scopes


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("read", True, id="word"),
        pytest.param("", False, id="empty"),
        pytest.param("a b", False, id="space"),
        pytest.param('"', False, id="quote"),
    ],
)
def test_is_valid_scope_token(value: str, valid: bool) -> None:
    """One §3.3 scope-token, nothing else."""
    assert is_valid_scope_token(value) is valid


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("https://api.example.com/app/", id="rfc8707-2-example"),
        pytest.param("https://cal.example.com/", id="rfc8707-2.1-example-cal"),
        pytest.param("urn:example:resource", id="urn"),
        pytest.param("https://api.example.com/app?x=1", id="query-allowed"),
    ],
)
def test_resource_accepted(value: str) -> None:
    """RFC 8707 §2: an absolute URI is a resource indicator."""
    assert check_resource(value) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("/app", id="relative"),
        pytest.param("api.example.com", id="no-scheme"),
        pytest.param("https://api.example.com/app#frag", id="rfc8707-2-fragment"),
        pytest.param("https://api.example.com/a b", id="space"),
        pytest.param("https://api.example.com/\x7f", id="delete"),
    ],
)
def test_resource_rejected(value: str) -> None:
    """RFC 8707 §2: not absolute, or with a fragment, is `invalid_target`."""
    with pytest.raises(InvalidTarget):
        check_resource(value)
