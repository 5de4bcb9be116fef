"""Property-based fuzzing of every authorization-server endpoint, in process.

Whatever the method, path, headers or body: no 500, no hang, no traceback in a response,
and every rejection carries one of the spec's error codes.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dpop import DpopKey
from tokengate.core import credentials
from tokengate.core.client_auth import presented_credentials
from tokengate.core.models import AdminRole, Client
from tokengate.management.service import Management
from tokengate.server import Settings, create_app
from tokengate.storage.memory import MemoryStore

ERROR_CODES = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "invalid_target", "unsupported_token_type",
    "access_denied", "temporarily_unavailable", "not_found", "invalid_token",
    "insufficient_scope", "invalid_client_metadata", "invalid_redirect_uri",
    "invalid_software_statement", "invalid_dpop_proof", "use_dpop_nonce",
}  # fmt: skip
PATHS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke",
         "/.well-known/oauth-authorization-server", "/healthz", "/metrics", "/openapi.json",
         "/oauth2/events", "/nope", "/oauth2/token/", "//oauth2/token",
         "/oauth2/register", "/oauth2/register/svc", "/oauth2/register/a/b",
         "/admin/api", "/admin/api/clients", "/admin/api/clients/svc",
         "/admin/api/clients/nobody/rotate-secret", "/admin/api/clients/nobody/disable",
         "/admin/api/tokens/revoke", "/admin/api/admin-tokens", "/admin/api/audit",
         "/admin/apix"]  # fmt: skip
# Bearer-protected paths answer 401 with a Bearer challenge, the others with Basic.
BEARER_PATHS = ("/oauth2/register", "/admin/api")
JSON_KEYS = ["client_name", "scope", "grant_types", "response_types", "redirect_uris",
             "token_endpoint_auth_method", "tokengate_audiences", "tokengate_introspect",
             "tokengate_token_ttl", "software_statement", "client_id", "client_secret",
             "grace", "token", "role", "ttl", "name"]  # fmt: skip
PARAMS = ["grant_type", "scope", "resource", "token", "token_type_hint", "client_id",
          "client_secret", "x"]  # fmt: skip

SECRET = credentials.new_client_secret()
RS_SECRET = credentials.new_client_secret()


def _app() -> Any:
    store = MemoryStore()
    for cid, secret, introspect in (("svc", SECRET, False), ("rs", RS_SECRET, True)):
        client = Client(
            cid,
            cid,
            credentials.hash_value(secret),
            frozenset({"read", "write"}),
            ("https://api.test",),
            can_introspect=introspect,
        )
        store._clients[cid] = client
    return create_app(Settings(issuer="https://as.test", body_timeout=1.0), store)


APP = _app()
LOOP = asyncio.new_event_loop()
LOOP.run_until_complete(APP.startup())
_MANAGEMENT = Management(APP.store, "fuzz")
ADMIN = LOOP.run_until_complete(_MANAGEMENT.create_admin_token(AdminRole.ADMIN, 10**8, "f"))[1]
INITIAL = LOOP.run_until_complete(_MANAGEMENT.create_admin_token(AdminRole.REGISTER, 10**8, "f"))[1]


def _basic(cid: str, secret: str) -> bytes:
    raw = f"{quote(cid, safe='')}:{quote(secret, safe='')}".encode()
    return b"Basic " + base64.b64encode(raw)


values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["client_credentials", "read", "read write", "https://api.test",
                     credentials.new_access_token(), "access_token", "svc", SECRET]),
)  # fmt: skip
form_pairs = st.lists(st.tuples(st.sampled_from(PARAMS) | st.text(max_size=10), values),
                      max_size=8)  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.sampled_from(["client_credentials", "read write", "https://api.test", "svc"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=12,
)
raw_bodies = st.one_of(
    json_values.map(orjson.dumps),
    st.dictionaries(st.sampled_from(JSON_KEYS), json_values, max_size=6).map(orjson.dumps),
    form_pairs.map(lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()),
    st.binary(max_size=300),
    st.just(b"x" * 20_000),
)
authorizations = st.one_of(
    st.none(),
    st.just(f"Bearer {ADMIN}".encode()),
    st.just(f"Bearer {INITIAL}".encode()),
    st.binary(max_size=60).map(lambda b: b"Bearer " + b),
    st.just(_basic("svc", SECRET)),
    st.just(_basic("rs", RS_SECRET)),
    st.tuples(st.text(max_size=20), st.text(max_size=20)).map(lambda t: _basic(*t)),
    st.binary(max_size=60).map(lambda b: b"Basic " + base64.b64encode(b)),
    st.binary(max_size=60),
)
DPOP_KEY = DpopKey()


def _proof(changes: dict[str, Any], cut: int) -> bytes:
    """A proof for the token endpoint (claims changed), truncated by `cut` characters."""
    proof = DPOP_KEY.proof("https://as.test/oauth2/token", **changes)
    return proof[: len(proof) - cut].encode()


dpop_proofs = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.builds(
        _proof,
        st.dictionaries(st.sampled_from(["htm", "htu", "iat", "jti", "nonce", "ath"]), json_values,
                        max_size=2),
        st.integers(0, 3),
    ),
)  # fmt: skip
content_types = st.sampled_from([
    b"application/x-www-form-urlencoded", b"application/x-www-form-urlencoded; charset=utf-8",
    b"application/json", b"text/plain", b"", b"application/x-www-form-urlencoded; charset=latin1",
])  # fmt: skip


def _call(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, query: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> dict[str, Any]:
        if not chunks:  # the whole request was read: the client hangs up (ends event streams)
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers,
             "query_string": query, "client": ("203.0.113.9", 4000)}  # fmt: skip
    LOOP.run_until_complete(asyncio.wait_for(APP(scope, receive, send), timeout=5))
    start, body_msg = sent[0], sent[1]
    return start["status"], dict(start["headers"]), body_msg.get("body", b"")


EXAMPLES = int(os.environ.get("TOKENGATE_FUZZ_EXAMPLES", "400"))


@pytest.mark.parametrize("path", PATHS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
    authorization=authorizations,
    content_type=st.one_of(st.none(), content_types),
    body=raw_bodies,
    query=st.one_of(
        st.just(b""),
        st.binary(max_size=30),
        st.sampled_from([b"since=1", b"client_id=svc&limit=2", b"after=x", b"since"]),
    ),
    extra=st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"x-request-id", b"content-type", b"x-junk"]),
            st.binary(max_size=30),
        ),
        max_size=3,
    ),
    dpop=dpop_proofs,
)
def test_no_input_breaks_the_server(
    method: str,
    path: str,
    authorization: bytes | None,
    content_type: bytes | None,
    body: bytes,
    query: bytes,
    extra: list[tuple[bytes, bytes]],
    dpop: bytes | None,
) -> None:
    """Any request gets a well-formed answer: never 500, always a spec error code.

    TOKENGATE_FUZZ_EXAMPLES sets the examples per path (400 in CI; the long run uses 100000).
    """
    headers = [(b"host", b"as.test")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    if content_type is not None:
        headers.append((b"content-type", content_type))
    headers += extra
    if dpop is not None:  # RFC 9449 proofs, valid, broken or none at all
        headers.append((b"dpop", dpop))
    status, response_headers, payload = _call(method, path, headers, body, query)
    assert status < 500, payload
    assert b"Traceback" not in payload
    for value in response_headers.values():
        assert b"\r" not in value
        assert b"\n" not in value
    json_body = response_headers.get(b"content-type") == b"application/json" and method != "HEAD"
    if status >= 400 and json_body:
        error = orjson.loads(payload)
        assert error["error"] in ERROR_CODES
        assert set(error) <= {"error", "error_description"}
    if status == 401:
        scheme = b"Bearer" if path.startswith(BEARER_PATHS) else b"Basic "
        assert response_headers[b"www-authenticate"].startswith(scheme)
    if status == 429:
        assert int(response_headers[b"retry-after"]) > 0


@settings(max_examples=500, deadline=None)
@given(client_id=st.text(min_size=1, max_size=40), secret=st.text(max_size=40))
def test_basic_credentials_roundtrip(client_id: str, secret: str) -> None:
    """RFC 6749 §2.3.1: any id and secret survive form-encoding + Basic and decode exactly."""
    header = _basic(client_id, secret).decode()
    creds = presented_credentials(header, {}, "realm")
    assert (creds.client_id, creds.client_secret) == (client_id, secret)
