"""Sans-I/O wire format of token introspection (RFC 7662 §2) and metadata discovery (RFC 8414).

Builds requests as plain data and turns plain responses into `TokenClaims` or an
`IntrospectionError`; the runtime's client (`runtime.client`) only moves bytes.
Request objects hide their headers and body from `repr`: they carry a token and a secret.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit, urlunsplit

import orjson

from tokengate.core.wire import METADATA_PATH
from tokengate.resource.protocol.claims import TokenClaims, parse_claims
from tokengate.resource.protocol.errors import (
    DiscoveryError,
    IntrospectionUnavailable,
    InvalidIntrospectionResponse,
)

_LOOPBACK_NAMES = frozenset({"localhost"})
# What form-encoding (`quote_plus`) leaves as is: RFC 3986 §2.3 unreserved characters. Tokens
# are usually made of these alone (tokengate's, JWTs), and matching costs less than encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The resource server's own client id and secret at the authorization server."""

    client_id: str
    client_secret: str = field(repr=False)

    def basic_authorization(self) -> str:
        """RFC 6749 §2.3.1: form-urlencode id and secret, then RFC 7617 `Basic` base64."""
        pair = f"{quote_plus(self.client_id, safe='')}:{quote_plus(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request to send as is."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The parts of an HTTP response the parsers read."""

    status: int
    body: bytes
    retry_after: str | None = None
    content_type: str | None = None


def introspection_request(endpoint: str, token: str, credentials: ClientCredentials) -> HttpRequest:
    """RFC 7662 §2.1: form POST of `token` with `token_type_hint=access_token`, Basic auth."""
    return IntrospectionRequests(endpoint, credentials).for_token(token)


class IntrospectionRequests:
    """`introspection_request` for one endpoint and one client, its constant parts made once
    (the Basic header is two percent-encodings and a base64 that every cache miss would pay)."""

    __slots__ = ("endpoint", "headers")

    def __init__(
        self, endpoint: str, credentials: ClientCredentials, accept: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.headers = (
            ("authorization", credentials.basic_authorization()),
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", accept or "application/json"),
        )

    def for_token(self, token: str) -> HttpRequest:
        """The request asking about `token` (form-encoded as `urlencode` would)."""
        value = token if _UNRESERVED.fullmatch(token) else quote_plus(token)
        body = f"token={value}&token_type_hint=access_token".encode("ascii")
        return HttpRequest("POST", self.endpoint, self.headers, body)


def parse_introspection(response: HttpResponse) -> TokenClaims:
    """RFC 7662 §2.2: a 200 JSON object with a boolean `active`; anything else is an error."""
    return parse_claims(_json(checked_status(response).body, InvalidIntrospectionResponse))


def checked_status(response: HttpResponse) -> HttpResponse:
    """The response if it is a 200; `IntrospectionUnavailable` (with any Retry-After) if not."""
    if response.status != 200:
        raise _unexpected_status(response)
    return response


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    path = METADATA_PATH + parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def metadata_request(issuer: str) -> HttpRequest:
    """RFC 8414 §3.1: GET of the authorization server's metadata document."""
    return HttpRequest("GET", metadata_url(issuer), (("accept", "application/json"),))


def parse_metadata(response: HttpResponse, issuer: str, *, allow_insecure: bool = False) -> str:
    """RFC 8414 §3.2-3.3: the `introspection_endpoint` of a document whose `issuer` matches."""
    if response.status >= 500 or response.status == 429:
        raise _unexpected_status(response)
    if response.status != 200:
        raise DiscoveryError(f"metadata request answered HTTP {response.status}")
    document = _json(response.body, DiscoveryError)
    if not isinstance(document, dict):
        raise DiscoveryError("metadata is not a JSON object")
    if document.get("issuer") != issuer:
        raise DiscoveryError("metadata 'issuer' does not equal the configured issuer")
    endpoint = document.get("introspection_endpoint")
    if not isinstance(endpoint, str):
        raise DiscoveryError("metadata has no 'introspection_endpoint'")
    try:
        return check_endpoint(endpoint, allow_insecure=allow_insecure)
    except ValueError as exc:
        raise DiscoveryError(f"metadata 'introspection_endpoint' is unusable: {exc}") from None


def jwks_uri(metadata: HttpResponse, *, allow_insecure: bool = False) -> str:
    """RFC 8414 §2 `jwks_uri` (RFC 9701 keys) of a metadata answer `parse_metadata` accepted."""
    try:
        document = orjson.loads(metadata.body)
    except (ValueError, RecursionError):
        raise DiscoveryError("metadata is not JSON") from None
    uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(uri, str):
        raise DiscoveryError("metadata has no 'jwks_uri': the issuer does not sign responses")
    try:
        return check_endpoint(uri, allow_insecure=allow_insecure)
    except ValueError as exc:
        raise DiscoveryError(f"metadata 'jwks_uri' is unusable: {exc}") from None


def check_endpoint(url: str, *, allow_insecure: bool = False) -> str:
    """An absolute https URL (RFC 7662 §4: TLS); plain http only to loopback or when allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    if parts.fragment or parts.username is not None:
        raise ValueError("URL must not carry a fragment or credentials")
    if parts.scheme == "http" and not (allow_insecure or is_loopback(parts.hostname)):
        raise ValueError("plain http is only allowed to loopback addresses")
    return url


def check_issuer(issuer: str, *, allow_insecure: bool = False) -> str:
    """RFC 8414 §2: an https URL without query or fragment."""
    check_endpoint(issuer, allow_insecure=allow_insecure)
    if urlsplit(issuer).query:
        raise ValueError("an issuer must not carry a query")
    return issuer


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3 `Retry-After` in delay-seconds (HTTP-dates are ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _unexpected_status(response: HttpResponse) -> IntrospectionUnavailable:
    hint = ""
    if response.status in (401, 403):
        hint = " (check the resource server's client id, secret and introspection permission)"
    return IntrospectionUnavailable(
        f"authorization server answered HTTP {response.status}{hint}",
        retry_after=parse_retry_after(response.retry_after),
    )


def _json(body: bytes, error: type[InvalidIntrospectionResponse | DiscoveryError]) -> object:
    try:
        return orjson.loads(body)
    except (ValueError, RecursionError):
        raise error("response body is not JSON") from None
