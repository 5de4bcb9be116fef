"""Claims as upstream headers (RFC 7662 §2.2), without I/O."""

from __future__ import annotations

import pytest

from tokengate.edge.claims import (
    DEFAULT_CLAIM_HEADERS,
    ClaimHeader,
    claim_header_keys,
    render_claim_headers,
)
from tokengate.resource.testing import claims


def test_defaults_render_subject_client_and_scope() -> None:
    """The default headers carry sub, client_id and the sorted scope string."""
    found = claims(scope="write read", sub="alice", client_id="app", exp=2_000_000_000)
    assert render_claim_headers(found, DEFAULT_CLAIM_HEADERS) == [
        (b"x-auth-subject", b"alice"),
        (b"x-auth-client-id", b"app"),
        (b"x-auth-scope", b"read write"),
    ]


def test_absent_and_empty_claims_send_nothing() -> None:
    """A claim the token lacks (or an empty scope) produces no header at all."""
    assert render_claim_headers(claims(client_id="app"), DEFAULT_CLAIM_HEADERS) == [
        (b"x-auth-client-id", b"app")
    ]


def test_control_characters_cannot_split_a_header() -> None:
    """CR, LF and other controls are removed; non-ASCII is sent as UTF-8 bytes."""
    found = claims(sub="eve\r\nX-Auth-Scope: admin\x00", username="Zoë")
    headers = (ClaimHeader("X-Sub", "sub"), ClaimHeader("X-User", "username"))
    assert render_claim_headers(found, headers) == [
        (b"x-sub", b"eveX-Auth-Scope: admin"),
        (b"x-user", "Zoë".encode()),
    ]


def test_numbers_and_audiences() -> None:
    """exp is sent as its integer, aud as space-separated values."""
    found = claims(exp=1_800_000_000, aud=["https://a", "https://b"])
    headers = (ClaimHeader("X-Exp", "exp"), ClaimHeader("X-Aud", "aud"))
    assert render_claim_headers(found, headers) == [
        (b"x-exp", b"1800000000"),
        (b"x-aud", b"https://a https://b"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("X-Auth-User = username", ClaimHeader("X-Auth-User", "username"), id="spaces"),
        pytest.param("X-Iss=iss", ClaimHeader("X-Iss", "iss"), id="plain"),
    ],
)
def test_parse(text: str, expected: ClaimHeader) -> None:
    """HEADER=CLAIM parses, spaces around either side ignored."""
    assert ClaimHeader.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("X-Auth-Subject", id="no-equals"),
        pytest.param("X-Auth=password", id="unknown-claim"),
        pytest.param("X Auth=sub", id="space-in-name"),
        pytest.param("X-Auth:=sub", id="colon-in-name"),
    ],
)
def test_parse_rejects(text: str) -> None:
    """Malformed specs, unknown claims and invalid header names are refused."""
    with pytest.raises(ValueError, match=r"."):
        ClaimHeader.parse(text)


def test_strip_keys_are_normalized() -> None:
    """Names to strip are lower-case with `-` for `_`."""
    assert claim_header_keys([ClaimHeader("X_Auth_Sub", "sub")]) == {b"x-auth-sub"}
