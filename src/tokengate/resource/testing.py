"""Helpers for testing code protected by tokengate, in your own test suite.

* `FakeClock`: a settable clock for caches and validators, so tests never sleep.
* `claims(...)` builds `TokenClaims` the way an introspection response would.
* `StaticIntrospector` / `static_validator(...)`: a fixed token → claims table, no network.
* `FakeAuthorizationServer`: an in-memory RFC 7662 + RFC 8414 server to put behind
  `httpx.MockTransport` (`transport()` / `async_transport()`) or to run as an ASGI app,
  with switchable failures (`down`, `timeout`, `garbage`, or an HTTP status) and call counters.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus

import anyio
import httpx

from tokengate.resource.asgi import Receive, Scope, Send
from tokengate.resource.cache import MemoryTokenCache
from tokengate.resource.claims import INACTIVE, TokenClaims, parse_claims
from tokengate.resource.validator import SyncValidator, Validator

Failure = Literal["down", "timeout", "garbage"] | int
TokenTable = Mapping[str, TokenClaims | Mapping[str, Any]]


class FakeClock:
    """A settable epoch clock: tests move time instead of sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def claims(*, scope: str = "", active: bool = True, **members: Any) -> TokenClaims:
    """`TokenClaims` parsed from an RFC 7662 response with these members."""
    document: dict[str, Any] = {"active": active, **members}
    if scope:
        document["scope"] = scope
    return parse_claims(document)


def _as_claims(value: TokenClaims | Mapping[str, Any]) -> TokenClaims:
    return value if isinstance(value, TokenClaims) else parse_claims(dict(value))


class StaticIntrospector:
    """Async introspector answering from a table; unknown tokens are inactive."""

    def __init__(self, tokens: TokenTable | None = None) -> None:
        self.tokens = {token: _as_claims(value) for token, value in (tokens or {}).items()}
        self.calls = 0

    async def introspect(self, token: str) -> TokenClaims:
        """The table's claims for `token`, or inactive."""
        self.calls += 1
        return self.tokens.get(token, INACTIVE)

    async def aclose(self) -> None:
        """Nothing to release."""


class SyncStaticIntrospector:
    """Blocking twin of `StaticIntrospector`."""

    def __init__(self, tokens: TokenTable | None = None) -> None:
        self.tokens = {token: _as_claims(value) for token, value in (tokens or {}).items()}
        self.calls = 0

    def introspect(self, token: str) -> TokenClaims:
        """The table's claims for `token`, or inactive."""
        self.calls += 1
        return self.tokens.get(token, INACTIVE)

    def close(self) -> None:
        """Nothing to release."""


def static_validator(tokens: TokenTable, *, clock: Callable[[], float] = time.time) -> Validator:
    """A `Validator` over `StaticIntrospector(tokens)`."""
    cache = MemoryTokenCache(clock=clock)
    return Validator(StaticIntrospector(tokens), cache=cache, clock=clock)


def static_sync_validator(
    tokens: TokenTable, *, clock: Callable[[], float] = time.time
) -> SyncValidator:
    """A `SyncValidator` over `SyncStaticIntrospector(tokens)`."""
    cache = MemoryTokenCache(clock=clock)
    return SyncValidator(SyncStaticIntrospector(tokens), cache=cache, clock=clock)


@dataclass(frozen=True, slots=True)
class Answer:
    """A status, headers and body the fake server sends."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)


class FakeAuthorizationServer:
    """In-memory RFC 7662 introspection endpoint and RFC 8414 metadata for tests."""

    introspection_path = "/oauth2/introspect"

    def __init__(
        self,
        *,
        issuer: str = "https://as.example",
        client_id: str = "resource-server",
        client_secret: str = "resource-server-secret",  # noqa: S107  # a fake's fixed test value
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.tokens: dict[str, dict[str, Any]] = {}
        self.failure: Failure | None = None
        self.delay = 0.0  # seconds the async handler and ASGI app wait before answering
        self.introspection_calls = 0
        self.metadata_calls = 0
        self.last_form: dict[str, list[str]] = {}
        self.last_credentials: tuple[str, str] | None = None

    @property
    def introspection_url(self) -> str:
        """Absolute URL of the introspection endpoint."""
        return self.issuer + self.introspection_path

    def issue(self, *, scope: str = "read", ttl: int | None = 3600, **members: Any) -> str:
        """A new active token; `members` become extra RFC 7662 response members."""
        token = secrets.token_urlsafe(32)
        now = int(self.clock())
        document: dict[str, Any] = {"active": True, "scope": scope, "iat": now, **members}
        document.setdefault("client_id", "app")
        if ttl is not None:
            document["exp"] = now + ttl
        self.tokens[token] = document
        return token

    def revoke(self, token: str) -> None:
        """Make `token` inactive."""
        self.tokens.pop(token, None)

    def transport(self) -> httpx.MockTransport:
        """A transport for `httpx.Client` / `SyncIntrospectionClient`."""
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        """A transport for `httpx.AsyncClient` / `IntrospectionClient` (honours `delay`)."""
        return httpx.MockTransport(self.handle_async)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (MockTransport handler)."""
        self._raise_transport_failure(request)
        answer = self.answer(request.method, request.url.path, request.headers, request.read())
        return httpx.Response(answer.status, headers=list(answer.headers), content=answer.body)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """Answer one request after `delay` seconds (async MockTransport handler)."""
        if self.delay:
            await anyio.sleep(self.delay)
        return self.handle(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point, to serve the fake over a real socket (e.g. with uvicorn)."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.delay:
            await anyio.sleep(self.delay)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        answer = self.answer(scope["method"], scope["path"], headers, body)
        raw_headers = [(k.encode(), v.encode()) for k, v in answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": answer.body})

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Route one request to metadata, introspection, or 404."""
        if isinstance(self.failure, int):
            return Answer(self.failure, b'{"error":"server_error"}', (("retry-after", "7"),))
        if self.failure == "garbage":
            return Answer(200, b"<html>not json</html>", (("content-type", "text/html"),))
        if method == "GET" and path.startswith("/.well-known/oauth-authorization-server"):
            self.metadata_calls += 1
            return _json(200, self.metadata())
        if method == "POST" and path == self.introspection_path:
            return self._introspect(headers, body)
        return _json(404, {"error": "not_found"})

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 document this server publishes."""
        return {
            "issuer": self.issuer,
            "introspection_endpoint": self.introspection_url,
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
        }

    def _introspect(self, headers: Mapping[str, str], body: bytes) -> Answer:
        self.introspection_calls += 1
        self.last_credentials = _basic_credentials(headers.get("authorization", ""))
        if self.last_credentials != (self.client_id, self.client_secret):
            return _json(401, {"error": "invalid_client"})
        self.last_form = parse_qs(body.decode())
        token = self.last_form.get("token", [""])[0]
        document = self.tokens.get(token)
        if document is None or document.get("exp", float("inf")) <= self.clock():
            return _json(200, {"active": False})
        return _json(200, document)

    def _raise_transport_failure(self, request: httpx.Request) -> None:
        if self.failure == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)


def _json(status: int, document: Mapping[str, Any]) -> Answer:
    return Answer(status, json.dumps(document).encode())


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)
