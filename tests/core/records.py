"""Plain records and RFC example values shared by the core tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from tokengate.core.credentials import hash_value
from tokengate.core.models import AccessToken, Client

NOW = 1_419_350_238  # RFC 7662 §2.2 example `iat`
REALM = "tokengate"
ISSUER = "https://server.example.com"
# RFC 6749 §2.3.1 / §4.4.2 example client: s6BhdRkqt3 with the password gX1fBat3bV.
RFC_CLIENT_ID, RFC_SECRET = "s6BhdRkqt3", "gX1fBat3bV"
RFC_BASIC = "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"


def make_client(**changes: Any) -> Client:
    """The RFC 6749 example client, allowed `read write`, with `changes` applied."""
    client = Client(
        client_id=RFC_CLIENT_ID,
        name="example",
        secret_hash=hash_value(RFC_SECRET),
        scopes=frozenset({"read", "write"}),
    )
    return dataclasses.replace(client, **changes)


def make_token(**changes: Any) -> AccessToken:
    """An access token of the example client, issued at `NOW` for an hour."""
    token = AccessToken(
        token_hash=hash_value("2YotnFZFEjr1zCsicMWpAA"),
        jti="c5d9c0a3e1f04b7e9a3b0d3c8e2f1a77",
        client_id=RFC_CLIENT_ID,
        scopes=frozenset({"read", "write"}),
        audiences=(),
        issued_at=NOW,
        expires_at=NOW + 3600,
    )
    return dataclasses.replace(token, **changes)
