"""Client credentials grant (RFC 6749 §4.4.2 request, §4.4.3/§5.1 response; RFC 8707 §2)."""

from __future__ import annotations

import pytest

from tests.core.records import NOW, make_client
from tokengate.core.credentials import hash_value, is_access_token_format
from tokengate.core.errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokengate.core.forms import parse_form
from tokengate.core.token_endpoint import (
    check_grant_type,
    granted_audiences,
    granted_scopes,
    issue,
)

RFC_REQUEST = b"grant_type=client_credentials"  # RFC 6749 §4.4.2 example body
API, CAL = "https://api.example.com/app/", "https://cal.example.com/"


def test_rfc_example_request_is_accepted() -> None:
    """§4.4.2: `grant_type=client_credentials` is the whole request."""
    check_grant_type(parse_form(RFC_REQUEST))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"scope=read", InvalidRequest, id="rfc6749-5.2-missing-grant_type"),
        pytest.param(b"grant_type=", InvalidRequest, id="rfc6749-3.1-empty-grant_type"),
        pytest.param(
            b"grant_type=password", UnsupportedGrantType, id="rfc6749-5.2-unsupported_grant_type"
        ),
        pytest.param(
            b"grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA",
            UnsupportedGrantType,
            id="rfc6749-4.1.3-authorization_code",
        ),
        pytest.param(
            b"grant_type=Client_Credentials",
            UnsupportedGrantType,
            id="grant_type-is-case-sensitive",
        ),
    ],
)
def test_bad_grant_type(body: bytes, error: type[OAuthError]) -> None:
    """§5.2: missing is `invalid_request`, anything else `unsupported_grant_type`."""
    with pytest.raises(error):
        check_grant_type(parse_form(body))


@pytest.mark.parametrize(
    ("body", "scopes"),
    [
        pytest.param(RFC_REQUEST, {"read", "write"}, id="rfc6749-3.3-omitted-means-default"),
        pytest.param(RFC_REQUEST + b"&scope=read", {"read"}, id="rfc6749-4.4.2-narrower"),
        pytest.param(RFC_REQUEST + b"&scope=write+read", {"read", "write"}, id="all"),
        pytest.param(RFC_REQUEST + b"&scope=", {"read", "write"}, id="rfc6749-3.1-empty-scope"),
    ],
)
def test_granted_scopes(body: bytes, scopes: set[str]) -> None:
    """§3.3: the requested scopes, or all the client's when none are requested."""
    assert granted_scopes(make_client(), parse_form(body)) == frozenset(scopes)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(RFC_REQUEST + b"&scope=admin", id="rfc6749-5.2-invalid_scope-not-allowed"),
        pytest.param(RFC_REQUEST + b"&scope=read+admin", id="rfc6749-5.2-invalid_scope-partly"),
        pytest.param(RFC_REQUEST + b"&scope=read%20%20write", id="rfc6749-3.3-malformed"),
    ],
)
def test_scope_beyond_the_client_is_invalid_scope(body: bytes) -> None:
    """§5.2: scopes the client may not have (or malformed ones) are `invalid_scope`."""
    with pytest.raises(InvalidScope):
        granted_scopes(make_client(), parse_form(body))


@pytest.mark.parametrize(
    ("body", "audiences"),
    [
        pytest.param(RFC_REQUEST, (API, CAL), id="rfc8707-2-omitted-means-default"),
        pytest.param(RFC_REQUEST + b"&resource=https%3A%2F%2Fcal.example.com%2F", (CAL,), id="one"),
        pytest.param(
            RFC_REQUEST + b"&resource=https%3A%2F%2Fcal.example.com%2F"
            b"&resource=https%3A%2F%2Fapi.example.com%2Fapp%2F"
            b"&resource=https%3A%2F%2Fcal.example.com%2F",
            (CAL, API),
            id="rfc8707-2-repeated-deduplicated-in-order",
        ),
    ],
)
def test_granted_audiences(body: bytes, audiences: tuple[str, ...]) -> None:
    """RFC 8707 §2: `resource` selects among the client's audiences."""
    client = make_client(audiences=(API, CAL))
    assert granted_audiences(client, parse_form(body)) == audiences


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            RFC_REQUEST + b"&resource=https%3A%2F%2Fother.example.com%2F",
            id="rfc8707-2-not-allowed",
        ),
        pytest.param(RFC_REQUEST + b"&resource=%2Fapp", id="rfc8707-2-relative"),
        pytest.param(
            RFC_REQUEST + b"&resource=https%3A%2F%2Fcal.example.com%2F%23x", id="rfc8707-2-fragment"
        ),
    ],
)
def test_bad_resource_is_invalid_target(body: bytes) -> None:
    """RFC 8707 §2: a resource the client may not use, or not an absolute URI, is rejected."""
    with pytest.raises(InvalidTarget):
        granted_audiences(make_client(audiences=(API, CAL)), parse_form(body))


def test_issue_response_members() -> None:
    """§4.4.3/§5.1: access_token, token_type, expires_in (and scope); no refresh_token."""
    issued = issue(make_client(token_ttl=3600), parse_form(RFC_REQUEST), NOW)
    body = issued.body
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert "refresh_token" not in body  # §4.4.3: a refresh token SHOULD NOT be included
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "read write")
    assert is_access_token_format(body["access_token"])


def test_issue_record_is_known_by_hash_only() -> None:
    """The stored record holds the token's SHA-256, never the value (RFC 9700 §4.9.3)."""
    client = make_client(audiences=(API,), token_ttl=600)
    issued = issue(client, parse_form(RFC_REQUEST + b"&scope=read"), NOW)
    record, token = issued.record, issued.body["access_token"]
    assert record.token_hash == hash_value(token)
    assert token not in repr(record)
    assert (record.client_id, record.scopes, record.audiences) == (
        client.client_id,
        frozenset({"read"}),
        (API,),
    )
    assert (record.issued_at, record.expires_at, record.revoked_at) == (NOW, NOW + 600, None)


def test_every_issue_is_a_fresh_token() -> None:
    """§10.10: each grant mints a new random value and jti."""
    first, second = (issue(make_client(), parse_form(RFC_REQUEST), NOW) for _ in range(2))
    assert first.body["access_token"] != second.body["access_token"]
    assert first.record.jti != second.record.jti


def test_disabled_client_is_unauthorized() -> None:
    """§5.2: a client no longer allowed the grant gets `unauthorized_client`."""
    with pytest.raises(UnauthorizedClient):
        issue(make_client(disabled=True), parse_form(RFC_REQUEST), NOW)


def test_grant_type_is_checked_first() -> None:
    """A bad grant_type is reported before any scope problem."""
    with pytest.raises(UnsupportedGrantType):
        issue(make_client(), parse_form(b"grant_type=password&scope=admin"), NOW)


def test_no_empty_scope_in_the_response() -> None:
    """§5.1/§3.3: `scope`, when present, is one or more scope-tokens."""
    issued = issue(make_client(scopes=frozenset()), parse_form(RFC_REQUEST), NOW)
    assert issued.body.get("scope", "absent") != ""


def test_dpop_bound_issue() -> None:
    """RFC 9449 §5: with a key thumbprint the token is `DPoP` and its record carries the jkt."""
    issued = issue(
        make_client(),
        parse_form(RFC_REQUEST),
        NOW,
        jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    )
    assert issued.body["token_type"] == "DPoP"
    assert issued.record.jkt == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    assert issue(make_client(), parse_form(RFC_REQUEST), NOW).record.jkt is None
