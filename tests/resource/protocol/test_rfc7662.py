"""Sans-I/O introspection and metadata wire (RFC 7662 §2, RFC 6749 §2.3.1, RFC 8414 §3)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from tokengate.resource.protocol.errors import (
    DiscoveryError,
    IntrospectionUnavailable,
    InvalidIntrospectionResponse,
)
from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    HttpResponse,
    introspection_request,
    metadata_url,
    parse_introspection,
    parse_metadata,
)


def test_rfc6749_basic_authorization_vector() -> None:
    """RFC 6749 §2.3.1 example credentials give the RFC's Authorization header."""
    credentials = ClientCredentials("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw")
    assert credentials.basic_authorization() == "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"


def test_basic_credentials_are_form_encoded_before_base64() -> None:
    """RFC 6749 §2.3.1: `:`, spaces and non-ASCII survive via form-encoding."""
    value = ClientCredentials("id:with space", "s€cr+t/%").basic_authorization()
    decoded = base64.b64decode(value.removeprefix("Basic ")).decode("ascii")
    assert decoded == "id%3Awith+space:s%E2%82%ACcr%2Bt%2F%25"


def test_request_and_credentials_hide_secrets_in_repr() -> None:
    """Neither the token nor the secret shows up in a repr."""
    credentials = ClientCredentials("rs", "the-secret")
    request = introspection_request("https://as.example/i", "the-token", credentials)
    assert "the-secret" not in repr(credentials)
    assert "the-token" not in repr(request)
    assert "the-secret" not in repr(request)


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        pytest.param(
            "https://as.example",
            "https://as.example/.well-known/oauth-authorization-server",
            id="rfc8414-3.1-no-path",
        ),
        pytest.param(
            "https://as.example/issuer1",
            "https://as.example/.well-known/oauth-authorization-server/issuer1",
            id="rfc8414-3.1-path",
        ),
    ],
)
def test_metadata_url(issuer: str, url: str) -> None:
    """RFC 8414 §3.1: the well-known segment goes between host and path."""
    assert metadata_url(issuer) == url


@pytest.mark.parametrize(
    ("response", "error"),
    [
        pytest.param(HttpResponse(404, b""), DiscoveryError, id="not-found"),
        pytest.param(HttpResponse(502, b""), IntrospectionUnavailable, id="transient"),
        pytest.param(HttpResponse(200, b"[]"), DiscoveryError, id="not-an-object"),
        pytest.param(
            HttpResponse(200, b'{"issuer":"https://as.example"}'), DiscoveryError, id="no-endpoint"
        ),
        pytest.param(
            HttpResponse(
                200,
                b'{"issuer":"https://as.example","introspection_endpoint":"http://evil.example/i"}',
            ),
            DiscoveryError,
            id="insecure-endpoint",
        ),
    ],
)
def test_unusable_metadata(response: HttpResponse, error: type[Exception]) -> None:
    """Metadata that cannot be trusted or used is an error."""
    with pytest.raises(error):
        parse_metadata(response, "https://as.example")


@pytest.mark.parametrize(
    ("response", "error"),
    [
        pytest.param(HttpResponse(500, b""), IntrospectionUnavailable, id="5xx"),
        pytest.param(HttpResponse(401, b""), IntrospectionUnavailable, id="our-credentials"),
        pytest.param(HttpResponse(200, b"[]"), InvalidIntrospectionResponse, id="json-array"),
        pytest.param(HttpResponse(200, b"\xff"), InvalidIntrospectionResponse, id="not-utf8"),
    ],
)
def test_unusable_introspection_answers(response: HttpResponse, error: type[Exception]) -> None:
    """Only a 200 RFC 7662 object is an answer; a 401 is our problem, not the token's."""
    with pytest.raises(error):
        parse_introspection(response)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("tga_AbC-09._~x", id="unreserved-as-is"),
        pytest.param("a+b/c=d", id="base64-reserved"),
        pytest.param("sp ace&amp=%25", id="form-delimiters"),
        pytest.param("", id="empty"),
    ],
)
def test_introspection_body_is_form_encoded(token: str) -> None:
    """RFC 7662 §2.1: the body is `application/x-www-form-urlencoded`, as `urlencode` writes it,
    whether or not the token has characters that need encoding."""
    request = introspection_request("https://as.example/i", token, ClientCredentials("rs", "s"))
    expected = urlencode({"token": token, "token_type_hint": "access_token"})
    assert request.body == expected.encode("ascii")
