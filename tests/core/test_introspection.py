"""Token introspection (RFC 7662 §2.1 request, §2.2 response, §4 checks)."""

from __future__ import annotations

import pytest

from tests.core.records import ISSUER, NOW, make_client, make_token
from tokengate.core.credentials import new_access_token
from tokengate.core.errors import InvalidRequest
from tokengate.core.forms import parse_form
from tokengate.core.introspection import (
    INACTIVE,
    introspection_body,
    presented_token,
    visible_to,
    worth_looking_up,
)
from tokengate.core.models import AccessToken, Client

# RFC 7662 §2.2: the registered members of an introspection response.
REGISTERED = {
    "active", "scope", "client_id", "username", "token_type", "exp", "iat", "nbf", "sub", "aud",
    "iss", "jti",
}  # fmt: skip
RESOURCE_SERVER = make_client(client_id="rs", can_introspect=True)


@pytest.mark.parametrize(
    ("body", "token"),
    [
        pytest.param(b"token=2YotnFZFEjr1zCsicMWpAA", "2YotnFZFEjr1zCsicMWpAA", id="rfc7662-2.1"),
        pytest.param(
            b"token=mF_9.B5f-4.1JqM&token_type_hint=access_token",
            "mF_9.B5f-4.1JqM",
            id="rfc7662-2.1-with-hint",
        ),
        pytest.param(
            b"token=2YotnFZFEjr1zCsicMWpAA&token_type_hint=refresh_token",
            "2YotnFZFEjr1zCsicMWpAA",
            id="rfc7662-2.1-other-hint-extends-search",
        ),
        pytest.param(
            b"token=2YotnFZFEjr1zCsicMWpAA&token_type_hint=unheard_of",
            "2YotnFZFEjr1zCsicMWpAA",
            id="unknown-hint-ignored",
        ),
    ],
)
def test_presented_token(body: bytes, token: str) -> None:
    """§2.1: `token` is read; any `token_type_hint` leaves the search unchanged."""
    assert presented_token(parse_form(body)) == token


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"token_type_hint=access_token", id="rfc7662-2.1-missing-token"),
        pytest.param(b"token=", id="rfc6749-3.1-empty-is-missing"),
    ],
)
def test_missing_token_is_invalid_request(body: bytes) -> None:
    """§2.1: `token` is REQUIRED."""
    with pytest.raises(InvalidRequest):
        presented_token(parse_form(body))


@pytest.mark.parametrize(
    ("token", "worth"),
    [
        pytest.param("2YotnFZFEjr1zCsicMWpAA", False, id="rfc-example-not-ours"),
        pytest.param(new_access_token(), True, id="ours"),
        pytest.param(new_access_token()[:-1] + "x", False, id="bad-checksum"),
    ],
)
def test_worth_looking_up(token: str, worth: bool) -> None:
    """Only values in our token format need a storage read."""
    assert worth_looking_up(token) is worth


@pytest.mark.parametrize(
    ("token_audiences", "caller_audiences", "visible"),
    [
        pytest.param((), (), True, id="unbound"),
        pytest.param(("https://a.example",), ("https://a.example",), True, id="same"),
        pytest.param(
            ("https://a.example", "https://b.example"), ("https://b.example",), True, id="one-of"
        ),
        pytest.param(("https://a.example",), (), False, id="rfc7662-4-caller-serves-none"),
        pytest.param(
            ("https://a.example",), ("https://b.example",), False, id="rfc7662-4-other-resource"
        ),
    ],
)
def test_visible_to(
    token_audiences: tuple[str, ...], caller_audiences: tuple[str, ...], visible: bool
) -> None:
    """§4: an audience-bound token is shown only to a resource server serving one."""
    token = make_token(audiences=token_audiences)
    caller = make_client(client_id="rs", audiences=caller_audiences)
    assert visible_to(token, caller) is visible


def test_active_body() -> None:
    """§2.2: the active answer carries the registered members with their types."""
    body = introspection_body(make_token(), RESOURCE_SERVER, NOW + 10, ISSUER)
    assert body == {
        "active": True,
        "scope": "read write",
        "client_id": "s6BhdRkqt3",
        "token_type": "Bearer",
        "exp": NOW + 3600,
        "iat": NOW,
        "nbf": NOW,
        "sub": "s6BhdRkqt3",
        "iss": ISSUER,
        "jti": "c5d9c0a3e1f04b7e9a3b0d3c8e2f1a77",
    }


def test_body_members_are_registered_and_typed_like_the_example() -> None:
    """§2.2 example: `exp`/`iat` integers, `scope` a space-separated string, no extras."""
    token = make_token(audiences=("https://protected.example.net/resource",))
    caller = make_client(client_id="rs", audiences=("https://protected.example.net/resource",))
    body = introspection_body(token, caller, NOW, ISSUER)
    assert set(body) <= REGISTERED
    assert all(isinstance(body[k], int) for k in ("exp", "iat", "nbf"))
    assert body["aud"] == "https://protected.example.net/resource"
    assert body["scope"].split(" ") == ["read", "write"]


def test_several_audiences_are_a_list() -> None:
    """RFC 7519 §4.1.3 `aud`: a string for one audience, an array for several."""
    token = make_token(audiences=("https://a.example", "https://b.example"))
    caller = make_client(client_id="rs", audiences=("https://b.example",))
    body = introspection_body(token, caller, NOW, ISSUER)
    assert body["aud"] == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("token", "caller", "now"),
    [
        pytest.param(None, RESOURCE_SERVER, NOW, id="rfc7662-2.2-unknown"),
        pytest.param(make_token(), RESOURCE_SERVER, NOW + 3600, id="rfc7662-4-expired"),
        pytest.param(make_token(), RESOURCE_SERVER, NOW - 1, id="rfc7662-4-not-yet-valid"),
        pytest.param(make_token(revoked_at=NOW), RESOURCE_SERVER, NOW, id="rfc7662-4-revoked"),
        pytest.param(
            make_token(audiences=("https://a.example",)),
            RESOURCE_SERVER,
            NOW,
            id="rfc7662-4-not-for-this-caller",
        ),
    ],
)
def test_inactive_is_exactly_active_false(
    token: AccessToken | None, caller: Client, now: float
) -> None:
    """§2.2: inactive answers are exactly `{"active": false}` and carry nothing more."""
    body = introspection_body(token, caller, now, ISSUER)
    assert body == {"active": False}
    assert body is INACTIVE


def test_token_without_scopes_has_no_empty_scope() -> None:
    """§2.2/RFC 6749 §3.3: `scope`, when present, is one or more scope-tokens."""
    body = introspection_body(make_token(scopes=frozenset()), RESOURCE_SERVER, NOW, ISSUER)
    assert body.get("scope", "absent") != ""


def test_dpop_bound_token_has_cnf() -> None:
    """RFC 9449 §6.2: a bound token is `token_type: DPoP` with `cnf.jkt` (RFC 7800 §3.1)."""
    body = introspection_body(make_token(jkt="jkt-1"), RESOURCE_SERVER, NOW + 10, ISSUER)
    assert (body["token_type"], body["cnf"]) == ("DPoP", {"jkt": "jkt-1"})
    assert "cnf" not in introspection_body(make_token(), RESOURCE_SERVER, NOW + 10, ISSUER)
