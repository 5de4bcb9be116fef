"""Property-based fuzzing of the gateway ASGI app, in process, with a `MockUpstream`.

Requests are what a real HTTP/1.1 server can hand over (lower-case header names, values without
CR/LF/NUL, a raw target of visible ASCII, a body matching its framing), otherwise adversarial:
spoofed claim headers in every spelling, hop-by-hop fields and `Connection` lists naming others,
forged `X-Forwarded-*`, dot segments and encodings in the path. The upstream answers with any
status, hop-by-hop response fields and sized or unsized bodies, or fails (refused, timed out).
Tokens' claims carry CR/LF/NUL and non-ASCII. Properties, in both modes:

* the gateway never answers 5xx of its own except 502/504 for an upstream failure, and logs no
  error (an internal failure would be a 502 plus an ERROR record);
* the upstream sees exactly the client's end-to-end fields, in order, plus `Host`,
  `X-Forwarded-*`, `Via`, its own framing and (introspect mode, validated requests only) one
  fresh copy of each claim header with the claim's bytes minus control characters; no field
  value carries CR, LF or NUL, so nothing can be injected;
* in introspect mode nothing reaches the upstream at a path some reading of which is under
  `/auth-api` without a token the validator accepted; `/_tokengate/` is never forwarded;
* the client gets the upstream's status, its end-to-end response fields plus `Via`, and its body.

TOKENGATE_FUZZ_EXAMPLES sets the examples per test (300 in CI; the long run uses 100000).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.gateway.support import MockUpstream
from tests.support.fuzzing import FUZZ, readings, request_readings, segments, under
from tokengate.edge.target import ambiguous_target
from tokengate.gateway import Gateway, GatewaySettings, build_policy, create_gateway
from tokengate.gateway import parse_scope_rule as scope_rule
from tokengate.gateway.upstream import TIMEOUT, UNREACHABLE, UpstreamFailure
from tokengate.resource.testing import claims, static_validator

UPSTREAM = "http://upstream.test:8000"
CLIENT = ("203.0.113.7", 4711)
HOP = {b"connection", b"proxy-connection", b"keep-alive", b"te", b"trailer",
       b"transfer-encoding", b"upgrade", b"proxy-authorization", b"proxy-authenticate"}  # fmt: skip
ADDED = {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"via"}
CLAIM_HEADERS = {
    b"x-auth-subject": "sub",
    b"x-auth-client-id": "client_id",
    b"x-auth-scope": "scope",
}
FAR = 4_000_000_000
TOKENS = {
    "tgat_mallory": claims(scope="read", sub="alice\r\nX-Injected: 1", client_id="app\x00\x7f",
                           exp=FAR),
    "tgat_writer": claims(scope="read write", sub="b\u00f6b", client_id="ops", exp=FAR),
    "tgat_blank": claims(scope="read", sub="\r\n", exp=FAR),
}  # fmt: skip
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
LOOP = asyncio.new_event_loop()


# -- the upstream -------------------------------------------------------------------------------


@dataclass
class Upstream:
    """What the next request gets, and what the last one looked like when it arrived."""

    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    sized: bool = True
    failure: str | None = None
    seen: httpx.Request | None = None
    seen_body: bytes = b""

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen = request
        assert isinstance(request.stream, httpx.AsyncByteStream)
        self.seen_body = b"".join([chunk async for chunk in request.stream])
        if self.failure == "refused":
            raise UpstreamFailure(UNREACHABLE)
        if self.failure == "timeout":
            raise UpstreamFailure(TIMEOUT)
        headers = list(self.headers)
        if self.sized:
            headers.append((b"content-length", str(sum(map(len, self.body))).encode()))
        return httpx.Response(self.status, headers=headers, stream=_Parts(self.body))


class _Parts(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


UP = Upstream()


def _gateway(mode: str) -> Gateway:
    if mode == "bypass":
        return create_gateway(GatewaySettings(upstream=UPSTREAM), client=MockUpstream(UP))
    policy = build_policy(["/auth-api/**"], [scope_rule("POST /auth-api/items=write")])
    settings = GatewaySettings(upstream=UPSTREAM, mode="introspect", policy=policy, realm="edge")
    validator = static_validator(TOKENS)
    return create_gateway(settings, validator=validator, client=MockUpstream(UP))


GATEWAYS = {mode: _gateway(mode) for mode in ("bypass", "introspect")}
for _gateway_app in GATEWAYS.values():
    LOOP.run_until_complete(_gateway_app.startup())


# -- strategies: what a real server can deliver -----------------------------------------------
# uvicorn (httptools or h11) answers 400 itself to a target with a space, a control character or
# a byte over 0x7e; it drops a `#fragment` and splits the query off at `?`.

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "?#")
TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
targets = st.one_of(
    st.sampled_from(["/auth-api/hello", "/auth-api/items", "/public/ping", "/_tokengate/healthz",
                     "/_tokengate/metrics", "/_tokengate/x", "/public/..;/auth-api/items",
                     "/public/%2e%2e/auth-api/hello", "/public/../auth-api/me", "//auth-api/me",
                     "/public%2f..%2fauth-api/hello", "/x%2Fy/../auth-api/hello"]),
    segments.map(lambda s: "/" + "".join(c for c in "/".join(s) if c in VISIBLE + "/")),
    st.text(VISIBLE, max_size=30).map(lambda t: "/" + t),
)  # fmt: skip
names = st.one_of(
    st.sampled_from([*HOP, *ADDED, *CLAIM_HEADERS, b"x_auth_subject", b"x_auth_scope",
                     b"x-auth_client-id", b"expect", b"x-access-token", b"authorization",
                     b"content-type", b"cookie", b"x-private", b"x-request-id"]),
    st.text(TCHAR, min_size=1, max_size=12).map(str.encode),
)  # fmt: skip
field_values = st.one_of(
    st.binary(max_size=30).map(lambda b: CONTROL.sub(b"", b).strip()),
    st.sampled_from([b"keep-alive, x-private", b"x-auth-subject", b"close", b"chunked",
                     b"100-continue", b"admin", b"10.0.0.1, 10.0.0.2", b"h\xc3\xa9"]),
    st.lists(names, max_size=3).map(b", ".join),
)  # fmt: skip
token_headers = st.sampled_from([*TOKENS, "tgat_unknown"]).flatmap(
    lambda t: st.sampled_from([[(b"x-access-token", t.encode())],
                               [(b"authorization", b"Bearer " + t.encode())], []])
)  # fmt: skip
headers = st.tuples(token_headers, st.lists(st.tuples(names, field_values), max_size=6)).map(
    lambda t: t[0] + t[1]
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
bodies = st.lists(st.binary(max_size=100), max_size=3)
framings = st.sampled_from(["none", "content-length", "chunked"])
response_headers = st.lists(st.tuples(names, field_values), max_size=5)
statuses = st.sampled_from([200, 201, 204, 301, 304, 400, 404, 500, 502, 503])
failures = st.sampled_from([None, None, None, None, "refused", "timeout"])
queries = st.text(VISIBLE, max_size=10).map(str.encode)


# -- one request through the gateway ------------------------------------------------------------


@dataclass
class Exchange:
    """What the client sent and got."""

    scope: dict[str, Any]
    body: bytes
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    answer: bytes = b""
    complete: bool = False


def _request(method: str, target: str, query: bytes, raw: list[tuple[bytes, bytes]],
             chunks: list[bytes], framing: str) -> Exchange:  # fmt: skip
    raw = [h for h in raw if h[0] not in (b"content-length", b"transfer-encoding")]
    chunks = chunks if framing != "none" else []
    body = b"".join(chunks)
    if framing == "content-length":
        raw.append((b"content-length", str(len(body)).encode()))
    elif framing == "chunked":
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": unquote(target), "raw_path": target.encode("ascii"),
             "query_string": query, "root_path": "", "headers": raw, "client": CLIENT,
             "server": ("gw.test", 80)}  # fmt: skip
    return Exchange(scope, body)


def _run(gateway: Gateway, exchange: Exchange, chunks: list[bytes]) -> None:
    parts = [c for c in chunks if c] if exchange.body else []
    inbox = [{"type": "http.request", "body": c, "more_body": True} for c in parts[:-1]]
    inbox.append({"type": "http.request", "body": parts[-1] if parts else b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the client stays connected until cancelled
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert exchange.status == 0, "a second response start"
            exchange.status, exchange.headers = message["status"], list(message["headers"])
        else:
            exchange.answer += message.get("body", b"")
            exchange.complete = not message.get("more_body", False)

    LOOP.run_until_complete(asyncio.wait_for(gateway(exchange.scope, receive, send), 10))


# -- the model of what crosses ------------------------------------------------------------------


def _named(raw: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {t.strip() for n, v in raw if n == b"connection" for t in v.lower().split(b",")} - {b""}


def end_to_end(raw: list[tuple[bytes, bytes]], strip: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The fields a proxy must pass on (RFC 9110 §7.6.1), minus `strip` (any `_` spelling)."""
    drop = HOP | _named(raw)
    return [(n, v) for n, v in raw if n not in drop and n.replace(b"_", b"-") not in strip]


def claim_values(token: str) -> list[tuple[bytes, bytes]]:
    """The claim headers a validated request must carry: bytes minus control characters."""
    out = []
    for name, member in CLAIM_HEADERS.items():
        value = getattr(TOKENS[token], member)
        rendered = CONTROL.sub(b"", str(value).encode()).strip() if value is not None else b""
        if rendered:
            out.append((name, rendered))
    return out


def check_upstream_request(mode: str, exchange: Exchange, validated: str | None) -> None:
    """Exactly the expected fields, in order; the body byte for byte; the target as sent."""
    request = UP.seen
    assert request is not None
    raw = exchange.scope["headers"]
    got = [(name.lower(), value) for name, value in request.headers.raw]  # httpx: Content-Length
    for name, value in got:
        assert not re.search(rb"[\r\n\x00]", value), (name, value)
    got.reverse()
    got.remove((b"via", b"1.1 tokengate"))  # the gateway's own, after any the client sent
    got.reverse()
    strip = strip_names(mode)
    own = ADDED | {b"content-length", b"transfer-encoding"} | strip
    # `h[1]`: upstream, the gateway drops empty-valued fields (reported; RFC 9110 §5.5 allows
    # them); downstream it keeps them.
    forwarded = end_to_end(raw, strip | {b"expect"})
    expected = [h for h in forwarded if h[0] not in ADDED - {b"via"} and h[1]]
    assert [h for h in got if h[0] not in own or h in expected] == expected
    assert [v for n, v in got if n == b"host"] == [b"upstream.test:8000"]
    assert [v for n, v in got if n == b"x-forwarded-for"][-1].endswith(CLIENT[0].encode())
    claims_sent = [h for h in got if h[0] in strip]
    assert claims_sent == (claim_values(validated) if validated else [])
    assert UP.seen_body == exchange.body
    # httpx resolves literal `.`/`..` segments (RFC 3986 §5.2.4) and escapes a few characters
    # (`<`, `"`, ...) when it builds the URL: what the upstream decodes is, up to dot segments
    # and a trailing slash, what the policy read; the query decodes to what was sent.
    arrived = unquote(request.url.raw_path.split(b"?")[0].decode("ascii"))
    sent = request_readings(exchange.scope["path"], exchange.scope["raw_path"])
    assert _trimmed(readings(arrived)) & _trimmed(sent), arrived
    assert unquote(request.url.query) == unquote(exchange.scope["query_string"])


def _trimmed(paths: set[str]) -> set[str]:
    # httpx resolves `/a/b/..` to `/a`, RFC 3986 to `/a/`.
    return {path.rstrip("/") or "/" for path in paths}


def strip_names(mode: str) -> set[bytes]:
    """Claim header names the gateway strips from clients (and sets itself) in `mode`."""
    return set(CLAIM_HEADERS) if mode == "introspect" else set()


def check_response(exchange: Exchange) -> None:
    """The upstream's status, end-to-end fields plus Via, and body."""
    assert exchange.status == UP.status
    upstream = list(UP.headers)
    if UP.sized:
        upstream.append((b"content-length", str(sum(map(len, UP.body))).encode()))
    assert exchange.headers == [*end_to_end(upstream, set()), (b"via", b"1.1 tokengate")]
    if exchange.scope["method"] != "HEAD":
        assert exchange.answer == b"".join(UP.body)
    assert exchange.complete


# -- properties ---------------------------------------------------------------------------------


class Recorder(logging.Handler):
    """Keeps the ERROR records of tokengate's loggers (an internal failure logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


ERRORS = Recorder()
logging.getLogger("tokengate").addHandler(ERRORS)


@pytest.mark.parametrize("mode", ["bypass", "introspect"])
@FUZZ
@given(method=methods, target=targets, query=queries, raw=headers, chunks=bodies,
       framing=framings, status=statuses, answer_headers=response_headers, answer=bodies,
       sized=st.booleans(), failure=failures)  # fmt: skip
def test_gateway_forwards_exactly_and_never_breaks(
    mode: str, method: str, target: str, query: bytes,
    raw: list[tuple[bytes, bytes]], chunks: list[bytes], framing: str, status: int,
    answer_headers: list[tuple[bytes, bytes]], answer: list[bytes], sized: bool,
    failure: str | None,
) -> None:  # fmt: skip
    """Any request, any upstream answer: exact forwarding both ways, no injection, no bypass."""
    ERRORS.records.clear()
    UP.status, UP.headers, UP.body, UP.sized, UP.failure = (
        status, answer_headers, answer, sized, failure)  # fmt: skip
    UP.seen = None
    exchange = _request(method, target, query, raw, chunks, framing)
    _run(GATEWAYS[mode], exchange, chunks)
    reached = UP.seen is not None
    event(f"{mode} reached={reached} status={exchange.status}")
    assert not ERRORS.records, [r.getMessage() for r in ERRORS.records]
    assert b"Traceback" not in exchange.answer
    for _, value in exchange.headers:
        assert not re.search(rb"[\r\n\x00]", value)
    path = exchange.scope["path"]
    protected = under(request_readings(path, exchange.scope["raw_path"]), "/auth-api")
    if ambiguous_target(exchange.scope["raw_path"]):  # refused at the edge, in both modes
        assert not reached
        assert exchange.status == 400
        return
    if path.startswith("/_tokengate/"):
        assert not reached
        assert exchange.status in (200, 404)
        return
    if not reached:
        assert mode == "introspect"
        assert protected
        assert exchange.status in (400, 401, 403, 503)
        return
    validated = _validated(raw) if mode == "introspect" and protected else None
    check_upstream_request(mode, exchange, validated)
    if mode == "introspect":  # the bypass check: what the upstream reads, validated or public
        arrived = UP.seen.url.raw_path.split(b"?")[0]  # type: ignore[union-attr]
        upstream_readings = request_readings(unquote(arrived.decode()), arrived)
        assert validated or not under(upstream_readings, "/auth-api"), arrived
    if failure is not None:
        assert exchange.status == {"refused": 502, "timeout": 504}[failure]
        return
    check_response(exchange)


def _validated(raw: list[tuple[bytes, bytes]]) -> str:
    """The token whose claims the gateway must have sent with a protected request."""
    for name, value in raw:
        token = value.decode("latin-1").removeprefix("Bearer ")
        if name in (b"x-access-token", b"authorization") and token in TOKENS:
            return token
    raise AssertionError("a protected request reached the upstream without a known token")
