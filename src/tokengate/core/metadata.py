"""RFC 8414 authorization server metadata (with RFC 7591 §3's `registration_endpoint` and
RFC 9449 §5.1's `dpop_signing_alg_values_supported`)."""

from __future__ import annotations

from typing import Any

from tokengate.core import dpop
from tokengate.core.client_assertion import ALGORITHMS
from tokengate.core.wire import (
    EVENTS_METADATA_MEMBER,
    EVENTS_PATH,
    INTROSPECT_PATH,
    JWKS_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
)

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# RFC 8414 §2: the JWS algorithms accepted for private_key_jwt at each endpoint.
SIGNING_ALGS = list(ALGORITHMS)


def server_metadata(issuer: str, scopes: list[str]) -> dict[str, Any]:
    """§2: `issuer` equals the configured issuer; every endpoint and its auth methods."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "token_endpoint": base + TOKEN_PATH,
        "introspection_endpoint": base + INTROSPECT_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        EVENTS_METADATA_MEMBER: base + EVENTS_PATH,
        "registration_endpoint": base + REGISTER_PATH,
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "scopes_supported": scopes,
    }


def signing_metadata(issuer: str, algorithms: list[str]) -> dict[str, Any]:
    """RFC 8414 §2 `jwks_uri` and RFC 9701 §7: where the keys signing introspection
    responses are, and their algorithms (only while the server signs)."""
    return {
        "jwks_uri": issuer.rstrip("/") + JWKS_PATH,
        "introspection_signing_alg_values_supported": algorithms,
    }
