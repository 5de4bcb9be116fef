"""Neutral responses (RFC 6749 §5.1 no-store, §5.2 error JSON and invalid_client 401)."""

from __future__ import annotations

import orjson
import pytest

from tests.core.records import REALM
from tokengate.core.challenge import basic_challenge
from tokengate.core.client_auth import invalid_client
from tokengate.core.errors import InvalidRequest, TemporarilyUnavailable
from tokengate.core.responses import (
    NO_STORE,
    Response,
    encode_headers,
    error_response,
    json_response,
)

# RFC 6749 §4.4.3 / §5.1 example body.
RFC_TOKEN_BODY = {
    "access_token": "2YotnFZFEjr1zCsicMWpAA",
    "token_type": "example",
    "expires_in": 3600,
    "example_parameter": "example_value",
}


def test_token_response_is_json_and_not_cached() -> None:
    """§5.1: `application/json`, `Cache-Control: no-store`, `Pragma: no-cache`."""
    response = json_response(200, RFC_TOKEN_BODY)
    assert response.status == 200
    assert orjson.loads(response.body) == RFC_TOKEN_BODY
    assert response.header("Content-Type") == "application/json"
    assert response.header("Cache-Control") == "no-store"
    assert response.header("Pragma") == "no-cache"


def test_explicit_headers_replace_no_store() -> None:
    """A caller may give its own headers (metadata is cacheable); the JSON type stays."""
    response = json_response(200, {"issuer": "x"}, encode_headers({"Cache-Control": "max-age=60"}))
    assert response.header("cache-control") == "max-age=60"
    assert response.header("pragma") is None
    assert response.header("content-type") == "application/json"


def test_compact_json() -> None:
    """Bodies are compact JSON."""
    assert json_response(200, {"active": False}).body == b'{"active":false}'


def test_rfc_example_error() -> None:
    """§5.2 example: 400 `{"error":"invalid_request"}`, not cached."""
    response = error_response(InvalidRequest())
    assert (response.status, response.body) == (400, b'{"error":"invalid_request"}')
    assert response.header("cache-control") == "no-store"
    assert response.header("pragma") == "no-cache"


def test_invalid_client_with_basic_is_401_with_challenge() -> None:
    """§5.2: `invalid_client` after Basic is 401 with `WWW-Authenticate`."""
    response = error_response(invalid_client(REALM))
    assert response.status == 401
    assert response.header("WWW-Authenticate") == basic_challenge(REALM)
    assert orjson.loads(response.body) == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }


def test_retry_after_travels() -> None:
    """RFC 7009 §2.2.1: 503 with `Retry-After`."""
    response = error_response(TemporarilyUnavailable("busy", headers={"Retry-After": "3"}))
    assert (response.status, response.header("retry-after")) == (503, "3")


@pytest.mark.parametrize("name", ["cache-control", "Cache-Control", "CACHE-CONTROL"])
def test_header_lookup_is_case_insensitive(name: str) -> None:
    """Header names are matched case-insensitively."""
    assert Response(200, headers=NO_STORE).header(name) == "no-store"


def test_encode_headers_lowercases_names() -> None:
    """Wire form: lower-case latin-1 names, values unchanged."""
    assert encode_headers({"WWW-Authenticate": 'Basic realm="x"'}) == (
        (b"www-authenticate", b'Basic realm="x"'),
    )
