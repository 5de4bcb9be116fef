"""Parsing introspection responses into claims (RFC 7662 §2.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tokengate.resource.protocol.claims import INACTIVE, parse_claims
from tokengate.resource.protocol.errors import InvalidIntrospectionResponse

# RFC 7662 §2.2, the example response.
RFC_EXAMPLE: dict[str, Any] = {
    "active": True,
    "client_id": "l238j323ds-23ij4",
    "username": "jdoe",
    "scope": "read write dolphin",
    "sub": "Z5O3upPC88QrAjx00dis",
    "aud": "https://protected.example.net/resource",
    "iss": "https://server.example.com/",
    "exp": 1419356238,
    "iat": 1419350238,
    "extension_field": "twenty-seven",
}


def test_rfc7662_example_response() -> None:
    """Every RFC 7662 member is exposed; extensions stay in `raw` only."""
    claims = parse_claims(RFC_EXAMPLE)
    assert claims.active
    assert claims.scopes == {"read", "write", "dolphin"}
    assert claims.client_id == "l238j323ds-23ij4"
    assert claims.username == "jdoe"
    assert claims.sub == "Z5O3upPC88QrAjx00dis"
    assert claims.aud == ("https://protected.example.net/resource",)
    assert claims.iss == "https://server.example.com/"
    assert (claims.exp, claims.iat) == (1419356238, 1419350238)
    assert claims.raw["extension_field"] == "twenty-seven"
    assert claims.scope == "dolphin read write"


def test_rfc7662_inactive_response() -> None:
    """`{"active": false}` is inactive, whatever else comes with it."""
    assert parse_claims({"active": False}) is INACTIVE
    assert parse_claims({"active": False, "scope": "read", "exp": "junk"}) is INACTIVE


def test_audience_list_and_fractional_times() -> None:
    """`aud` may be a list; fractional times round to the safe side (exp down, nbf up)."""
    claims = parse_claims({"active": True, "aud": ["a", "b"], "exp": 10.9, "nbf": 5.1})
    assert claims.aud == ("a", "b")
    assert (claims.exp, claims.nbf) == (10, 6)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param([], id="not-an-object"),
        pytest.param("active", id="a-string"),
        pytest.param({}, id="rfc7662-2.2-active-missing"),
        pytest.param({"active": "true"}, id="active-not-boolean"),
        pytest.param({"active": 1}, id="active-number"),
        pytest.param({"active": True, "exp": "1419356238"}, id="exp-string"),
        pytest.param({"active": True, "exp": True}, id="exp-boolean"),
        pytest.param({"active": True, "exp": float("nan")}, id="exp-nan"),
        pytest.param({"active": True, "scope": ["read"]}, id="scope-list"),
        pytest.param({"active": True, "aud": 5}, id="aud-number"),
        pytest.param({"active": True, "aud": ["a", 5]}, id="aud-mixed-list"),
        pytest.param({"active": True, "client_id": 7}, id="client-id-number"),
    ],
)
def test_garbage_is_rejected(document: object) -> None:
    """A response we cannot trust is an upstream error, never a decision."""
    with pytest.raises(InvalidIntrospectionResponse):
        parse_claims(document)


def test_to_dict_round_trips() -> None:
    """`to_dict` is JSON-serializable and parses back to equal claims."""
    claims = parse_claims(RFC_EXAMPLE)
    again = parse_claims(json.loads(json.dumps(claims.to_dict())))
    assert again == claims
    assert "extension_field" not in claims.to_dict()
