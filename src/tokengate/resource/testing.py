"""Helpers for testing code protected by tokengate, in your own test suite.

* `FakeClock`: a settable clock for validators, so tests never sleep.
* `claims(...)` builds `TokenClaims` the way an introspection response would.
* `StaticIntrospector` / `static_validator(...)`: a fixed token → claims table, no network.
* `HandlerTransport`: the runtime's HTTP transport answered by a function of yours (what
  `httpx.MockTransport` is to httpx), for `create_validator(settings, transport=...)`.
* `DPoPKey`: a client's DPoP key pair making RFC 9449 proofs (`proof(...)`), and its `jkt`
  for the `cnf` of the claims a bound token introspects to.
* `FakeAuthorizationServer`: an in-memory RFC 7662 + RFC 8414 server behind a
  `HandlerTransport` (`transport()`) or served as an ASGI app, with switchable failures
  (`down`, `timeout`, `garbage`, or an HTTP status) and call counters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus, urlsplit

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokengate.asgi.types import Receive, Scope, Send
from tokengate.core.dpop import ALGORITHMS, access_token_hash, thumbprint
from tokengate.core.jose import LimitedRegistry
from tokengate.core.wire import INTROSPECT_PATH
from tokengate.resource.protocol.claims import INACTIVE, TokenClaims, parse_claims
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.runtime.http import AttemptTimeouts, ConnectFailed, TimedOut
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.validator import Validator

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


_SIGNING = LimitedRegistry(ALGORITHMS)
_KEY_KINDS: dict[str, Callable[[], ECKey | RSAKey | OKPKey]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


class DPoPKey:
    """A client's DPoP key (RFC 9449 §4.2): signs proofs; `jkt` is its RFC 7638 thumbprint."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key = _KEY_KINDS[alg]()
        self.public_jwk: dict[str, Any] = self.key.as_dict(private=False)
        self.jkt = thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        **extra: Any,
    ) -> str:
        """A compact DPoP proof for `method` and `url` (`ath` of `token` when given)."""
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time() if iat is None else iat),
            **extra,
        }
        if token is not None:
            claims["ath"] = access_token_hash(token)
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, self.key, registry=_SIGNING)

    def bound(self, **members: Any) -> dict[str, Any]:
        """RFC 7662 members of a token bound to this key (RFC 9449 §6.2), to merge into claims."""
        return {"active": True, "cnf": {"jkt": self.jkt}, "token_type": "DPoP", **members}


class StaticIntrospector:
    """Async introspector answering from a table; unknown tokens are inactive."""

    def __init__(self, tokens: TokenTable | None = None) -> None:
        self.tokens = {token: _as_claims(value) for token, value in (tokens or {}).items()}
        self.calls = 0

    async def introspect(self, token: str) -> TokenClaims:
        """The table's claims for `token`, or inactive."""
        self.calls += 1
        return self.tokens.get(token, INACTIVE)


def static_validator(
    tokens: TokenTable, *, clock: Callable[[], float] = time.time, **settings: Any
) -> Validator:
    """A `Validator` over `StaticIntrospector(tokens)` (no network, no revocation events);
    `settings` are `ValidatorSettings` fields (e.g. `audience`, `max_ttl`)."""
    options: dict[str, Any] = {"revocation_events": False, **settings}
    config = ValidatorSettings(client_id="static", client_secret="static", **options)  # noqa: S106
    offline = HandlerTransport(_refuse_network)
    return Validator(
        config, introspector=StaticIntrospector(tokens), transport=offline, clock=clock
    )


Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class HandlerTransport:
    """An in-memory `HttpTransport`: every request is answered by `handler`.

    The handler may raise `ConnectFailed` or `TimedOut` (`tokengate.resource.runtime.http`)
    to play an unreachable or silent server. `requests` records what was sent.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def request(self, request: HttpRequest, timeouts: AttemptTimeouts) -> HttpResponse:
        """Answer `request` with the handler."""
        self.requests.append(request)
        answer = self.handler(request)
        return await answer if inspect.isawaitable(answer) else answer

    @contextlib.asynccontextmanager
    async def stream(
        self, request: HttpRequest, timeouts: AttemptTimeouts
    ) -> AsyncIterator[WholeBody]:
        """The handler's answer, its body as one chunk."""
        yield WholeBody(await self.request(request, timeouts))

    async def aclose(self) -> None:
        """Nothing to release."""
        self.closed = True


@dataclass(frozen=True, slots=True)
class WholeBody:
    """A complete response seen as a stream (`HttpTransport.stream`)."""

    response: HttpResponse

    @property
    def status(self) -> int:
        """The status code."""
        return self.response.status

    @property
    def content_type(self) -> str | None:
        """The media type."""
        return self.response.content_type

    async def chunks(self) -> AsyncIterator[bytes]:
        """The whole body, once."""
        yield self.response.body


def _refuse_network(request: HttpRequest) -> HttpResponse:
    raise ConnectFailed("no network in a static validator")


@dataclass(frozen=True, slots=True)
class Answer:
    """A status, headers and body the fake server sends."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)


class FakeAuthorizationServer:
    """In-memory RFC 7662 introspection endpoint and RFC 8414 metadata for tests."""

    introspection_path = INTROSPECT_PATH

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

    def transport(self) -> HandlerTransport:
        """An in-memory transport to this server, for `create_validator(..., transport=)`."""
        return HandlerTransport(self.handle)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request after `delay` seconds (`HandlerTransport` handler)."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure == "down":
            raise ConnectFailed("unreachable (connection refused)")
        if self.failure == "timeout":
            raise TimedOut("timed out")
        headers = {name.lower(): value for name, value in request.headers}
        answer = self.answer(request.method, urlsplit(request.url).path, headers, request.body)
        found = {name.lower(): value for name, value in answer.headers}
        return HttpResponse(
            answer.status, answer.body, found.get("retry-after"), found.get("content-type")
        )

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
            await asyncio.sleep(self.delay)
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
