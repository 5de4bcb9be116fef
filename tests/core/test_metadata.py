"""Authorization server metadata (RFC 8414 §2 members, §3 response, §3.3 issuer)."""

from __future__ import annotations

import pytest

from tokengate.core.metadata import server_metadata
from tokengate.core.wire import INTROSPECT_PATH, METADATA_PATH, REVOKE_PATH, TOKEN_PATH

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
SIGNING_ALGS = ["RS256", "PS256", "ES256", "EdDSA"]


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("https://server.example.com", id="rfc8414-3.2-example-issuer"),
        pytest.param("https://server.example.com/", id="trailing-slash"),
        pytest.param("https://server.example.com/tenant1", id="rfc8414-3.1-issuer-with-path"),
    ],
)
def test_issuer_is_returned_identically(issuer: str) -> None:
    """§3.3: `issuer` MUST be identical to the configured issuer, byte for byte."""
    assert server_metadata(issuer, [])["issuer"] == issuer


def test_rfc_example_members() -> None:
    """§3.2: endpoints under the issuer, as in the example response."""
    metadata = server_metadata("https://server.example.com", ["read", "write"])
    assert metadata["token_endpoint"] == "https://server.example.com" + TOKEN_PATH
    assert metadata["introspection_endpoint"] == "https://server.example.com" + INTROSPECT_PATH
    assert metadata["revocation_endpoint"] == "https://server.example.com" + REVOKE_PATH
    assert metadata["scopes_supported"] == ["read", "write"]


def test_endpoints_never_double_the_slash() -> None:
    """A trailing slash on the issuer does not produce `//oauth2/...`."""
    metadata = server_metadata("https://server.example.com/", [])
    assert metadata["token_endpoint"] == "https://server.example.com/oauth2/token"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        pytest.param(
            "grant_types_supported", ["client_credentials"], id="rfc8414-2-grant_types_supported"
        ),
        pytest.param("response_types_supported", [], id="rfc8414-2-no-authorization-endpoint"),
        pytest.param(
            "token_endpoint_auth_methods_supported", AUTH_METHODS, id="rfc8414-2-token-auth"
        ),
        pytest.param(
            "introspection_endpoint_auth_methods_supported",
            AUTH_METHODS,
            id="rfc8414-2-introspection-auth",
        ),
        pytest.param(
            "revocation_endpoint_auth_methods_supported",
            AUTH_METHODS,
            id="rfc8414-2-revocation-auth",
        ),
        pytest.param(
            "dpop_signing_alg_values_supported",
            ["ES256", "RS256", "PS256", "EdDSA"],
            id="rfc9449-5.1-dpop-algs",
        ),
    ],
)
def test_member(member: str, value: list[str]) -> None:
    """§2: `client_credentials` listed (the default is code/implicit), RFC 6749 §2.3.1 and
    RFC 7523 methods, private_key_jwt's asymmetric algorithms (never `none` or HMAC)."""
    assert server_metadata("https://server.example.com", [])[member] == value


def test_no_authorization_endpoint() -> None:
    """§2: `authorization_endpoint` is required only with a grant that uses it."""
    assert "authorization_endpoint" not in server_metadata("https://server.example.com", [])


def test_well_known_path() -> None:
    """§3: the metadata lives at `/.well-known/oauth-authorization-server`."""
    assert METADATA_PATH == "/.well-known/oauth-authorization-server"
