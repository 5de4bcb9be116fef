"""Client metadata: RFC 7591 §2 validation and the §3.2.1 / RFC 7592 §3 response. Sans-I/O.

Accepted members: `client_name`, `scope`, `grant_types` (only `client_credentials`),
`response_types` (none), `token_endpoint_auth_method` (`client_secret_basic` or
`client_secret_post`, both accepted at the endpoints whatever is registered; or
`private_key_jwt`, RFC 7523 §2.2, with exactly one of `jwks` — public keys only — and
`jwks_uri`, which must be https, or http to a loopback address for local use; such a client
gets no secret), `dpop_bound_access_tokens` (RFC 9449 §5.2: every token request must carry a
DPoP proof), and three extensions of ours (RFC 7591 §2 allows them):

- `tokengate_audiences`: the RFC 8707 resources the client may ask tokens for (absolute URIs);
- `tokengate_introspect`: may call the introspection endpoint (needs an admin credential);
- `tokengate_token_ttl`: access-token lifetime in seconds (1 s to a year).

Unknown members are ignored (§2). `redirect_uris` (non-empty) and `software_statement` are
refused with their own §3.2.2 codes: this server has no redirect-based flow and trusts no
software statement. The same checks serve `tokengate apply` and the management API.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from tokengate.core.client_assertion import MAX_JWKS_BYTES, BadJwks, jwks_text, parse_jwks
from tokengate.core.client_assertion import METHOD as PRIVATE_KEY_JWT
from tokengate.core.errors import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    InvalidScope,
    InvalidSoftwareStatement,
    InvalidTarget,
)
from tokengate.core.models import Client
from tokengate.core.scopes import check_resource, format_scope, parse_scope

AUTH_METHODS = ("client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT)
MAX_URI = 2000
GRANT_TYPES = ["client_credentials"]
AUDIENCES = "tokengate_audiences"
INTROSPECT = "tokengate_introspect"
TOKEN_TTL = "tokengate_token_ttl"
DPOP_BOUND = "dpop_bound_access_tokens"  # RFC 9449 §5.2
MAX_NAME = 200
MAX_AUDIENCES = 50
MAX_TTL = 31_536_000
DEFAULT_TTL = 3600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """What a client may register or an operator declare about it."""

    name: str
    scopes: frozenset[str] = frozenset()
    audiences: tuple[str, ...] = ()
    can_introspect: bool = False
    token_ttl: int = DEFAULT_TTL
    auth_method: str = AUTH_METHODS[0]
    jwks: str | None = None  # canonical JSON text (`client_assertion.jwks_text`)
    jwks_uri: str | None = None
    dpop_bound: bool = False  # RFC 9449 §5.2 `dpop_bound_access_tokens`

    @property
    def has_secret(self) -> bool:
        """Whether the client authenticates with a secret (else with signed assertions)."""
        return self.auth_method != PRIVATE_KEY_JWT


def parse_metadata(document: object, *, may_introspect: bool) -> ClientMetadata:
    """RFC 7591 §2: validate a registration (or RFC 7592 §2.2 update) request body."""
    if not isinstance(document, dict):
        raise InvalidClientMetadata("the request body must be a JSON object")
    _refuse_unsupported(document)
    introspect = _flag(document.get(INTROSPECT, False), INTROSPECT)
    if introspect and not may_introspect:
        raise InvalidClientMetadata(f"{INTROSPECT} needs an admin credential")
    auth_method = _auth_method(document.get("token_endpoint_auth_method", AUTH_METHODS[0]))
    jwks, jwks_uri = check_keys(auth_method, document.get("jwks"), document.get("jwks_uri"))
    return ClientMetadata(
        name=check_name(document.get("client_name", "")),
        scopes=check_scope(document.get("scope", "")),
        audiences=check_audiences(document.get(AUDIENCES, [])),
        can_introspect=introspect,
        token_ttl=check_ttl(document.get(TOKEN_TTL, DEFAULT_TTL)),
        auth_method=auth_method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        dpop_bound=_flag(document.get(DPOP_BOUND, False), DPOP_BOUND),
    )


def check_keys(auth_method: str, jwks: object, jwks_uri: object) -> tuple[str | None, str | None]:
    """RFC 7591 §2: `private_key_jwt` needs exactly one of `jwks` and `jwks_uri`; the secret
    methods take neither. Returns the JWKS as canonical text and the URI."""
    if auth_method != PRIVATE_KEY_JWT:
        if jwks is not None or jwks_uri is not None:
            raise InvalidClientMetadata("jwks and jwks_uri are for private_key_jwt clients")
        return None, None
    if (jwks is None) == (jwks_uri is None):
        raise InvalidClientMetadata("private_key_jwt needs exactly one of jwks and jwks_uri")
    if jwks_uri is not None:
        return None, check_jwks_uri(jwks_uri)
    try:
        parse_jwks(jwks)
    except BadJwks as exc:
        raise InvalidClientMetadata(str(exc)) from None
    text = jwks_text(jwks)
    if len(text) > MAX_JWKS_BYTES:
        raise InvalidClientMetadata(f"jwks must be at most {MAX_JWKS_BYTES} bytes")
    return text, None


def check_jwks_uri(value: object) -> str:
    """An https URL, or http to a loopback address (a key server on the same machine)."""
    if not isinstance(value, str) or len(value) > MAX_URI or _CONTROL.search(value):
        raise InvalidClientMetadata(f"jwks_uri must be a URL of at most {MAX_URI} characters")
    parts = urlsplit(value)
    if parts.fragment or not parts.hostname or parts.username or parts.password:
        raise InvalidClientMetadata("jwks_uri must be an absolute URL without credentials")
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise InvalidClientMetadata("jwks_uri must be https (http only to a loopback address)")
    return value


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: what it resolves to is not ours to trust
        return False


def _refuse_unsupported(document: dict[str, Any]) -> None:
    grants = document.get("grant_types", GRANT_TYPES)
    if grants != GRANT_TYPES:
        raise InvalidClientMetadata('grant_types must be ["client_credentials"]')
    if document.get("response_types", []) != []:
        raise InvalidClientMetadata("response_types must be empty (no redirect-based flow)")
    if document.get("redirect_uris", []) != []:
        raise InvalidRedirectUri("this server has no redirect-based flow")
    if "software_statement" in document:
        raise InvalidSoftwareStatement("software statements are not accepted")


def check_name(value: object) -> str:
    """A display name: a string of at most MAX_NAME characters, no control characters."""
    if not isinstance(value, str) or len(value) > MAX_NAME or _CONTROL.search(value):
        raise InvalidClientMetadata(f"client_name must be text of at most {MAX_NAME} characters")
    return value


def check_scope(value: object) -> frozenset[str]:
    """RFC 6749 §3.3 space-separated scope tokens; empty means none."""
    if not isinstance(value, str):
        raise InvalidClientMetadata("scope must be a string")
    if value == "":
        return frozenset()
    try:
        return parse_scope(value)
    except InvalidScope:
        raise InvalidClientMetadata("scope is not a list of RFC 6749 scope tokens") from None


def check_audiences(value: object) -> tuple[str, ...]:
    """A list of RFC 8707 resources (absolute URIs, no fragment), duplicates dropped."""
    if not isinstance(value, list) or len(value) > MAX_AUDIENCES:
        raise InvalidClientMetadata(f"{AUDIENCES} must be a list of at most {MAX_AUDIENCES} URIs")
    try:
        return tuple(dict.fromkeys(check_resource(_text(v)) for v in value))
    except InvalidTarget:
        raise InvalidClientMetadata(f"{AUDIENCES} must hold absolute URIs") from None


def check_ttl(value: object) -> int:
    """A token lifetime in whole seconds, 1 to MAX_TTL."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TTL:
        raise InvalidClientMetadata(f"{TOKEN_TTL} must be an integer from 1 to {MAX_TTL}")
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false")
    return value


def _auth_method(value: object) -> str:
    if value not in AUTH_METHODS:
        raise InvalidClientMetadata(
            "token_endpoint_auth_method must be " + " or ".join(AUTH_METHODS)
        )
    return str(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTarget("not a string")
    return value


def with_metadata(client: Client, metadata: ClientMetadata) -> Client:
    """`client` carrying `metadata` (everything else kept)."""
    return replace(
        client, name=metadata.name, scopes=metadata.scopes, audiences=metadata.audiences,
        can_introspect=metadata.can_introspect, token_ttl=metadata.token_ttl,
        auth_method=metadata.auth_method, jwks=metadata.jwks, jwks_uri=metadata.jwks_uri,
        dpop_bound_access_tokens=metadata.dpop_bound,
    )  # fmt: skip


def metadata_of(client: Client) -> ClientMetadata:
    """The metadata a stored client carries."""
    return ClientMetadata(
        client.name, client.scopes, client.audiences, client.can_introspect, client.token_ttl,
        client.auth_method, client.jwks, client.jwks_uri, client.dpop_bound_access_tokens,
    )  # fmt: skip


def information(client: Client) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3 client information, without any secret."""
    keys: dict[str, Any] = {}
    if client.jwks is not None:
        keys["jwks"] = json.loads(client.jwks)
    if client.jwks_uri is not None:
        keys["jwks_uri"] = client.jwks_uri
    return keys | {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "scope": format_scope(client.scopes),
        "grant_types": GRANT_TYPES,
        "response_types": [],
        "token_endpoint_auth_method": client.auth_method,
        AUDIENCES: list(client.audiences),
        INTROSPECT: client.can_introspect,
        TOKEN_TTL: client.token_ttl,
        DPOP_BOUND: client.dpop_bound_access_tokens,
    }
