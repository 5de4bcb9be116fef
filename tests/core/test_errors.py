"""OAuth error classes and bodies (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokengate.core import errors as e

# RFC 6749 §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")


@pytest.mark.parametrize(
    ("cls", "error", "status"),
    [
        pytest.param(e.InvalidRequest, "invalid_request", 400, id="rfc6749-5.2-invalid_request"),
        pytest.param(e.InvalidClient, "invalid_client", 401, id="rfc6749-5.2-invalid_client"),
        pytest.param(e.InvalidGrant, "invalid_grant", 400, id="rfc6749-5.2-invalid_grant"),
        pytest.param(
            e.UnauthorizedClient, "unauthorized_client", 400, id="rfc6749-5.2-unauthorized_client"
        ),
        pytest.param(
            e.UnsupportedGrantType,
            "unsupported_grant_type",
            400,
            id="rfc6749-5.2-unsupported_grant_type",
        ),
        pytest.param(e.InvalidScope, "invalid_scope", 400, id="rfc6749-5.2-invalid_scope"),
        pytest.param(e.InvalidTarget, "invalid_target", 400, id="rfc8707-2-invalid_target"),
        pytest.param(
            e.InvalidDpopProof, "invalid_dpop_proof", 400, id="rfc9449-5-invalid_dpop_proof"
        ),
        pytest.param(e.UseDpopNonce, "use_dpop_nonce", 400, id="rfc9449-8-use_dpop_nonce"),
        pytest.param(
            e.UnsupportedTokenType,
            "unsupported_token_type",
            400,
            id="rfc7009-2.2.1-unsupported_token_type",
        ),
        pytest.param(
            e.TemporarilyUnavailable,
            "temporarily_unavailable",
            503,
            id="rfc7009-2.2.1-temporarily_unavailable",
        ),
        pytest.param(e.ServerError, "server_error", 500, id="server_error"),
        pytest.param(e.AccessDenied, "access_denied", 403, id="access_denied"),
        pytest.param(e.RequestTooLarge, "invalid_request", 413, id="too-large"),
        pytest.param(e.MethodNotAllowed, "invalid_request", 405, id="method-not-allowed"),
        pytest.param(e.UnsupportedMediaType, "invalid_request", 415, id="unsupported-media-type"),
        pytest.param(e.TooManyRequests, "invalid_request", 429, id="rfc6585-4-too-many-requests"),
        pytest.param(
            e.IssuanceRateExceeded, "temporarily_unavailable", 429, id="issuance-rate-exceeded"
        ),
    ],
)
def test_error_code_and_status(cls: type[e.OAuthError], error: str, status: int) -> None:
    """Each class carries its RFC error code and HTTP status."""
    raised = cls()
    assert isinstance(raised, e.OAuthError)
    assert (raised.error, raised.status_code) == (error, status)
    assert raised.body() == {"error": error}


def test_rfc6749_example_body() -> None:
    """RFC 6749 §5.2 example: `{"error":"invalid_request"}`."""
    assert e.InvalidRequest().body() == {"error": "invalid_request"}


def test_description_is_included() -> None:
    """A description becomes `error_description`."""
    body = e.InvalidScope("requested scope exceeds what the client is allowed").body()
    assert body == {
        "error": "invalid_scope",
        "error_description": "requested scope exceeds what the client is allowed",
    }


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        pytest.param('say "hi"', "say ?hi?", id="double-quote"),
        pytest.param("a\\b", "a?b", id="backslash"),
        pytest.param("caf\u00e9 \u20ac", "caf? ?", id="non-ascii"),
        pytest.param("line\r\nbreak\t", "line??break?", id="controls"),
        pytest.param("plain text, ok! [1] {2} ~", "plain text, ok! [1] {2} ~", id="allowed"),
    ],
)
def test_description_character_set(text: str, safe: str) -> None:
    """§5.2: characters outside %x20-21 / %x23-5B / %x5D-7E are replaced."""
    assert e.safe_description(text) == safe
    assert e.InvalidRequest(text).body()["error_description"] == safe


@given(st.text(min_size=1))
def test_any_description_stays_in_the_character_set(text: str) -> None:
    """Whatever the input, the rendered description matches the §5.2 grammar."""
    assert DESCRIPTION.fullmatch(e.InvalidRequest(text).body()["error_description"])


def test_headers_are_copied() -> None:
    """Headers (challenges, Retry-After) travel with the error, copied."""
    given_headers = {"Retry-After": "5"}
    error = e.TemporarilyUnavailable("busy", headers=given_headers)
    given_headers["Retry-After"] = "6"
    assert error.headers == {"Retry-After": "5"}
    assert e.ServerError().headers == {}
