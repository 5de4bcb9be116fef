"""Property-based fuzzing of the resource-server middleware (`TokenGateMiddleware`), in process.

Behind it: the example policy (`/auth-api/**`, `GET /auth-api/hello` needs `read`, `POST
/auth-api/items` needs `write`) and a real `IntrospectionClient` talking to the
`FakeAuthorizationServer` over a `HandlerTransport`, failing in every way it can. Whatever the
method, path, headers or body: no exception escapes, no hang, no traceback, and every refusal
is RFC 6750 §3 (400/401/403 with a well-formed `Bearer` challenge, 503 with `Retry-After`).
Unprotected requests reach the app untouched; a request reaching the app under `/auth-api` in
any reading of its path (the readings `policy.py` names, recomputed here independently) was
validated with a token it carried and holding the route's scopes.

TOKENGATE_FUZZ_EXAMPLES sets the examples per test (300 in CI; the long run uses 100000).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import quote

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import (
    EXAMPLES,
    FUZZ,
    challenge_params,
    request_readings,
    segments,
    under,
)
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.example import example_policy
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.resilience import RetryPolicy
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.runtime.http import BrokenResponse
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeAuthorizationServer, HandlerTransport

REALM = "fuzz"
AUDIENCE = "https://rs.test"
LOOP = asyncio.new_event_loop()

# The authorization server's clock runs two hours behind, so `expired` is active there and only
# the resource server's own `exp` check can refuse it.
AS = FakeAuthorizationServer(clock=lambda: time.time() - 7200)
DAY = 86_400
TOKENS = {
    "reader": AS.issue(scope="read", aud=[AUDIENCE], ttl=DAY, jti="reader"),
    "writer": AS.issue(scope="read write", aud=[AUDIENCE], ttl=DAY, jti="writer"),
    "elsewhere": AS.issue(scope="read write", aud=["https://other.test"], ttl=DAY, jti="elsewhere"),
    "expired": AS.issue(scope="read write", aud=[AUDIENCE], ttl=3600, jti="expired"),
}
UNDECODABLE = "undecodable"  # a failure the fake has no switch for: a body failing its gzip


async def _as_handler(request: HttpRequest) -> HttpResponse:
    if AS.failure == UNDECODABLE:
        raise BrokenResponse("sent an undecodable response")  # what the transport says of it
    return await AS.handle(request)


TRANSPORT = HandlerTransport(_as_handler)
SETTINGS = ValidatorSettings(
    AS.client_id,
    AS.client_secret,
    introspection_url=AS.introspection_url,
    audience=AUDIENCE,
    retry=RetryPolicy(base_delay=0.0, max_delay=0.0),  # retries without sleeping
    revocation_events=False,
)

ERRORS = {
    400: {"invalid_request"},
    401: {"invalid_token", "invalid_dpop_proof", None},
    403: {"insufficient_scope"},
}
REFUSAL_HEADERS = {"content-type", "cache-control", "content-length", "www-authenticate"}
_NQSCHAR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # RFC 6750 §3, error_description
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")


# -- strategies -------------------------------------------------------------------------------

paths = st.one_of(
    st.sampled_from(["/auth-api/hello", "/auth-api/items", "/auth-api/me", "/auth-api",
                     "/auth-api/", "/public/ping", "/", "/auth-apix", "/public/auth-api/x"]),
    st.sampled_from(["/auth-api/hello", "/auth-api/items", "/public/..;/auth-api/items",
                     "/public/%2e%2e/auth-api/hello", "//auth-api/me", "/auth-api/x/../hello"]),
    st.tuples(st.sampled_from(["/", "//", "", "/public/", "\\"]), segments).map(
        lambda p: p[0] + "/".join(p[1])
    ),
    st.text(max_size=30),
)  # fmt: skip
methods = st.sampled_from(["GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "OPTIONS",
                           "PATCH", "get", "post", "FOO", ""])  # fmt: skip
tokens = st.one_of(
    st.sampled_from([*TOKENS.values(), "tgat_unknown", "a" * 5000, "", "tok en", "tok\r\nx: y"]),
    st.from_regex(r"[A-Za-z0-9\-._~+/]{1,12}=*", fullmatch=True),
    st.text(max_size=12),
)
schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "", "Bearer\t",
                           "Bearer\r\nX-Injected: 1\r\n"])  # fmt: skip
separators = st.sampled_from([" ", "  ", "", "\t", " \u00a0"])
authorizations = st.one_of(
    st.tuples(schemes, separators, tokens).map(lambda t: "".join(t).encode("utf-8", "replace")),
    st.binary(max_size=40),
    st.just(b"Bearer " + b"A" * 100_000),
)
customs = st.one_of(tokens.map(lambda t: t.encode("utf-8", "replace")), st.binary(max_size=40))
NAMES = [b"authorization", b"Authorization", b"AUTHORIZATION", b"x-access-token",
         b"X-Access-Token", b"x_access_token", b"content-type", b"host", b"x-junk"]  # fmt: skip
header_names = st.sampled_from(NAMES) | st.binary(max_size=12)
known = st.sampled_from(list(TOKENS.values())).map(str.encode)
one_token = st.one_of(
    known.map(lambda t: [(b"x-access-token", t)]),
    known.map(lambda t: [(b"authorization", b"Bearer " + t)]),
    known.map(lambda t: [(b"authorization", b"bearer " + t), (b"X-Access-Token", t)]),
)
headers = st.one_of(
    one_token,
    st.tuples(one_token, st.lists(st.tuples(header_names, st.binary(max_size=20)), max_size=2)).map(
        lambda t: t[0] + t[1]
    ),
    st.lists(
        st.one_of(
            st.tuples(st.just(b"authorization"), authorizations),
            st.tuples(st.just(b"x-access-token"), customs),
            st.tuples(header_names, st.binary(max_size=40) | authorizations),
        ),
        max_size=4,
    ),
)
routes = st.one_of(
    st.tuples(methods, paths),
    st.sampled_from([("POST", "/auth-api/items"), ("GET", "/auth-api/hello"),
                     ("POST", "/public/..;/auth-api/items"), ("HEAD", "//auth-api/hello")]),
)  # fmt: skip
failures = st.sampled_from([None, None, None, "down", "timeout", "garbage", 500, 503, 401,
                            UNDECODABLE])  # fmt: skip
bodies = st.lists(st.binary(max_size=200), max_size=3)


# -- the app behind the middleware, and one request through it ---------------------------------


class App:
    """Records the scope and body it was called with; answers 200."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] | None = None
        self.body = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        if scope["type"] == "http":
            while (message := await receive())["type"] == "http.request":
                self.body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b"app"})


def _middleware(app: App, failure: object) -> TokenGateMiddleware:
    AS.failure = failure  # type: ignore[assignment]
    validator = Validator(SETTINGS, transport=TRANSPORT)
    return TokenGateMiddleware(app, validator, policy=example_policy(), realm=REALM)


def _run(
    app: App, failure: object, scope: dict[str, Any], chunks: list[bytes]
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    pending = list(chunks) or [b""]

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = _middleware(app, failure)
    LOOP.run_until_complete(asyncio.wait_for(middleware(scope, receive, send), timeout=10))
    return sent


def _scope(method: str, path: str, raw_headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": _raw(path),
            "query_string": b"", "root_path": "", "headers": raw_headers,
            "client": ("203.0.113.9", 4000), "server": ("rs.test", 80)}  # fmt: skip


# -- the oracle: what a request presented (path readings: tests.support.fuzzing) -------------


def _raw(path: str) -> bytes:
    """The target a client sent for `path` (an ASGI server decodes it once into `path`)."""
    return quote(path, safe="/;=:@!$&'()*+,-._~", errors="replace").encode("ascii")


def protected(path: str) -> bool:
    """`/auth-api/**` in any reading."""
    return under(request_readings(path, _raw(path)), "/auth-api")


def required_scopes(method: str, path: str) -> set[str]:
    """The example policy's route scopes, over every reading."""
    method = method.upper()
    needed = set()
    for r in request_readings(path, _raw(path)):
        if r == "/auth-api/hello" and method in ("GET", "HEAD"):
            needed.add("read")
        if r == "/auth-api/items" and method == "POST":
            needed.add("write")
    return needed


def presented(raw_headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The values of every header that may carry a token (stripped, latin-1)."""
    found = []
    for name, value in raw_headers:
        text = value.decode("latin-1").strip()
        if name.lower() == b"x-access-token":
            found.append(text)
        elif name.lower() == b"authorization" and text.partition(" ")[0].lower() == "bearer":
            found.append(text.partition(" ")[2].strip())
    return found


# -- properties ------------------------------------------------------------------------------


def check_refusal(status: int, response_headers: dict[str, str], body: bytes) -> str | None:
    """RFC 6750 §3 shape of a refusal; returns the challenge's error code."""
    assert set(response_headers) <= REFUSAL_HEADERS | {"retry-after"}
    assert int(response_headers["content-length"]) == len(body)
    document = json.loads(body)
    assert set(document) <= {"error", "error_description"}
    assert _NQSCHAR.fullmatch(document.get("error_description", ""))
    if status == 503:
        assert document["error"] == "temporarily_unavailable"
        assert int(response_headers["retry-after"]) >= 1
        assert "www-authenticate" not in response_headers
        return None
    challenge = response_headers["www-authenticate"]
    params = challenge_params(challenge)
    assert params is not None, challenge
    assert params["realm"] == REALM
    assert set(params) <= {"realm", "error", "error_description", "scope"}
    assert params.get("error") in ERRORS[status]
    assert params.get("error") == document.get("error")
    assert _NQSCHAR.fullmatch(params.get("error_description", ""))
    if status == 403:
        assert _SCOPE.fullmatch(params["scope"])
    return params.get("error")


@FUZZ
@given(route=routes, raw_headers=headers, chunks=bodies, failure=failures)
def test_no_request_breaks_or_slips_past_the_middleware(
    route: tuple[str, str],
    raw_headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    failure: object,
) -> None:
    """Any request: a clean answer, RFC 6750 refusals, no bypass, public paths untouched."""
    method, path = route
    app = App()
    scope = _scope(method, path, raw_headers)
    original = dict(scope)
    sent = _run(app, failure, scope, chunks)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    status = starts[0]["status"]
    event(f"protected={protected(path)} status={status} reached_app={app.scope is not None}")
    response_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in starts[0]["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    for name, value in starts[0]["headers"]:
        assert re.fullmatch(rb"[a-z0-9-]+", name)
        assert not re.search(rb"[\x00-\x1f\x7f]", value)
    assert b"Traceback" not in body
    assert all(len(t) < 8 or t not in body.decode("latin-1") for t in presented(raw_headers))
    if not protected(path):
        assert app.scope == original  # untouched: no auth, same headers, same path
        assert (status, body, app.body) == (200, b"app", b"".join(chunks))
        return
    if app.scope is not None:  # reached the app: validated, with a token it carried
        claims = app.scope["auth"]
        assert isinstance(claims, TokenClaims)
        assert claims.jti in ("reader", "writer")
        assert TOKENS[claims.jti] in presented(raw_headers)
        assert required_scopes(method, path) <= claims.scopes
        assert status == 200
        return
    assert status in (400, 401, 403, 503)
    error = check_refusal(status, response_headers, body)
    if not presented(raw_headers):
        assert (status, error) == (401, None)  # RFC 6750 §3.1: no token, no error code
    if status == 401 and error is None:
        assert not presented(raw_headers)


@settings(parent=FUZZ, max_examples=max(50, EXAMPLES // 4))
@given(path=paths, raw_headers=headers, http_response=st.booleans())
def test_websocket_handshakes_are_protected_too(
    path: str, raw_headers: list[tuple[bytes, bytes]], http_response: bool
) -> None:
    """A refused handshake gets the HTTP refusal when the server can send one, else close 1008."""
    app = App()
    scope = {**_scope("GET", path, raw_headers), "type": "websocket"}
    scope.pop("method")
    if http_response:
        scope["extensions"] = {"websocket.http.response": {}}
    sent = _run(app, None, scope, [])
    if app.scope is not None:
        assert not protected(path) or isinstance(app.scope.get("auth"), TokenClaims)
        return
    assert protected(path)
    if http_response:
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] in (400, 401, 403, 503)
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]
