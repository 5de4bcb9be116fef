"""Rendering refusals (RFC 6750 §3)."""

from __future__ import annotations

import json

import pytest

from tokengate.resource.protocol.errors import (
    BearerError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ServiceUnavailable,
)
from tokengate.resource.protocol.responses import render_error


@pytest.mark.parametrize(
    ("error", "status", "challenge"),
    [
        pytest.param(
            MissingToken("an access token is required"),
            401,
            'Bearer realm="example"',
            id="rfc6750-3-no-token",
        ),
        pytest.param(
            InvalidToken("The access token expired"),
            401,
            'Bearer realm="example", error="invalid_token", '
            'error_description="The access token expired"',
            id="rfc6750-3-invalid-token",
        ),
        pytest.param(
            InsufficientScope("missing scope", scope="read write"),
            403,
            'Bearer realm="example", error="insufficient_scope", '
            'error_description="missing scope", scope="read write"',
            id="rfc6750-3.1-insufficient-scope",
        ),
        pytest.param(
            InvalidRequest("malformed"),
            400,
            'Bearer realm="example", error="invalid_request", error_description="malformed"',
            id="rfc6750-3.1-invalid-request",
        ),
    ],
)
def test_challenges(error: BearerError, status: int, challenge: str) -> None:
    """Status and `WWW-Authenticate` match RFC 6750 §3's examples."""
    response = render_error(error, "example")
    assert response.status == status
    assert response.header("www-authenticate") == challenge
    assert response.header("cache-control") == "no-store"
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") is None  # each adapter frames the body itself


def test_bodies_carry_error_and_description() -> None:
    """The JSON body mirrors the challenge: error code and description."""
    body = json.loads(render_error(InvalidToken("gone")).body)
    assert body == {"error": "invalid_token", "error_description": "gone"}


def test_missing_token_body_has_no_error_code() -> None:
    """No credentials → no error code anywhere (RFC 6750 §3.1)."""
    body = json.loads(render_error(MissingToken("an access token is required")).body)
    assert body == {"error_description": "an access token is required"}


def test_unavailable_has_retry_after_and_no_challenge() -> None:
    """503 tells the client when to retry and does not invite it to drop its token."""
    response = render_error(ServiceUnavailable("later", retry_after=7))
    assert response.status == 503
    assert response.header("retry-after") == "7"
    assert response.header("www-authenticate") is None
    assert json.loads(response.body)["error"] == "temporarily_unavailable"


def test_headers_are_wire_bytes() -> None:
    """The neutral response carries lower-case latin-1 bytes, as every adapter sends them."""
    response = render_error(InvalidToken("gone"))
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in response.headers)
    assert all(k == k.lower() for k, _ in response.headers)


def test_header_values_are_escaped() -> None:
    """Quotes, backslashes and control characters cannot break out of the challenge."""
    response = render_error(InvalidToken('bad "x"\\\r\nSet-Cookie: a=b'), 'my "realm"')
    challenge = response.header("www-authenticate")
    assert challenge is not None
    assert "\r" not in challenge
    assert "\n" not in challenge
    assert challenge.startswith('Bearer realm="my \\"realm\\""')
