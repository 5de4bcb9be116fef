"""RFC 7591 §2 client metadata: what is accepted, what each refusal's §3.2.2 code is."""

from __future__ import annotations

from typing import Any

import pytest

from tokengate.core.errors import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    InvalidSoftwareStatement,
)
from tokengate.core.models import Client
from tokengate.core.registration import (
    ClientMetadata,
    information,
    metadata_of,
    parse_metadata,
    with_metadata,
)


def test_full_document_is_read() -> None:
    """Every supported member, ours included; unknown members are ignored (§2)."""
    document = {
        "client_name": "Billing", "scope": "read write", "grant_types": ["client_credentials"],
        "response_types": [], "token_endpoint_auth_method": "client_secret_post",
        "tokengate_audiences": ["https://a.example", "https://a.example"],
        "tokengate_introspect": True, "tokengate_token_ttl": 60, "logo_uri": "ignored",
        "redirect_uris": [], "dpop_bound_access_tokens": True,
    }  # fmt: skip
    assert parse_metadata(document, may_introspect=True) == ClientMetadata(
        "Billing", frozenset({"read", "write"}), ("https://a.example",), True, 60,
        "client_secret_post", dpop_bound=True,
    )  # fmt: skip


def test_empty_document_gets_the_defaults() -> None:
    """No member at all: unnamed, no scope, basic auth, one-hour tokens."""
    assert parse_metadata({}, may_introspect=False) == ClientMetadata("")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        pytest.param([], InvalidClientMetadata, id="not-an-object"),
        pytest.param({"grant_types": ["authorization_code"]}, InvalidClientMetadata, id="grant"),
        pytest.param({"grant_types": "client_credentials"}, InvalidClientMetadata, id="grant-str"),
        pytest.param({"response_types": ["code"]}, InvalidClientMetadata, id="response-type"),
        pytest.param({"redirect_uris": ["https://x"]}, InvalidRedirectUri, id="redirect-uris"),
        pytest.param({"software_statement": "e30."}, InvalidSoftwareStatement, id="statement"),
        pytest.param({"client_name": 5}, InvalidClientMetadata, id="name-type"),
        pytest.param({"client_name": "x" * 201}, InvalidClientMetadata, id="name-long"),
        pytest.param({"client_name": "a\nb"}, InvalidClientMetadata, id="name-control"),
        pytest.param({"scope": ["read"]}, InvalidClientMetadata, id="scope-type"),
        pytest.param({"scope": 'bad"scope'}, InvalidClientMetadata, id="scope-syntax"),
        pytest.param({"scope": "a  b"}, InvalidClientMetadata, id="scope-double-space"),
        pytest.param({"tokengate_audiences": "https://a"}, InvalidClientMetadata, id="aud-str"),
        pytest.param({"tokengate_audiences": ["relative"]}, InvalidClientMetadata, id="aud-rel"),
        pytest.param({"tokengate_audiences": [1]}, InvalidClientMetadata, id="aud-type"),
        pytest.param({"tokengate_audiences": ["https://a"] * 51}, InvalidClientMetadata,
                     id="aud-many"),
        pytest.param({"tokengate_token_ttl": 0}, InvalidClientMetadata, id="ttl-zero"),
        pytest.param({"tokengate_token_ttl": True}, InvalidClientMetadata, id="ttl-bool"),
        pytest.param({"tokengate_token_ttl": 31_536_001}, InvalidClientMetadata, id="ttl-big"),
        pytest.param({"tokengate_introspect": "yes"}, InvalidClientMetadata, id="flag-type"),
        pytest.param({"dpop_bound_access_tokens": "true"}, InvalidClientMetadata,
                     id="rfc9449-5.2-dpop-flag-type"),
        pytest.param({"token_endpoint_auth_method": "none"}, InvalidClientMetadata, id="method"),
        pytest.param({"token_endpoint_auth_method": "private_key_jwt"}, InvalidClientMetadata,
                     id="method-jwt"),
    ],
)  # fmt: skip
def test_invalid_metadata_is_refused_with_its_code(
    document: Any, error: type[InvalidClientMetadata]
) -> None:
    """§3.2.2: a bad value is refused (400) with the most specific code."""
    with pytest.raises(error) as caught:
        parse_metadata(document, may_introspect=True)
    assert caught.type is error
    assert caught.value.status_code == 400


def test_introspection_needs_permission() -> None:
    """Asking for introspection without an admin credential is invalid_client_metadata."""
    with pytest.raises(InvalidClientMetadata, match="admin"):
        parse_metadata({"tokengate_introspect": True}, may_introspect=False)


def test_information_round_trips_through_parse() -> None:
    """What a read returns, registered again, is the same metadata (RFC 7592 §2.2 updates)."""
    client = with_metadata(
        Client("tgc_1", "", "0" * 64, frozenset(), created_at=7),
        ClientMetadata("n", frozenset({"a"}), ("https://x.example",), True, 99, dpop_bound=True),
    )
    document = information(client)
    assert document["dpop_bound_access_tokens"] is True
    assert document["client_id_issued_at"] == 7
    assert "secret" not in str(document).replace("client_secret_basic", "")
    assert parse_metadata(document, may_introspect=True) == metadata_of(client)
