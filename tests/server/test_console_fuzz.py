"""Property-based fuzzing of the admin console, in process.

Whatever the path under /admin, method, cookie, `Origin`, `Sec-Fetch-Site`, content type and
body: no 500, no traceback, the security headers on every page, and no change to the store
unless the request carried a live session, came from our origin and held its CSRF token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.fuzzing import FUZZ
from tokengate.core.models import AdminRole
from tokengate.management.service import Management
from tokengate.server import Settings, create_app
from tokengate.server.console.guard import COOKIE
from tokengate.storage.memory import MemoryStore

ISSUER = "https://as.test"
STORE = MemoryStore()
APP = create_app(Settings(issuer=ISSUER, body_timeout=1.0, admin_console=True), STORE)
LOOP = asyncio.new_event_loop()
LOOP.run_until_complete(APP.startup())
_TOKEN, _ = LOOP.run_until_complete(
    Management(STORE, "fuzz").create_admin_token(AdminRole.ADMIN, 86_400, "fuzz")
)
assert APP.console is not None
SESSION_ID, SESSION = APP.console.sessions.sign_in(
    "", f"admin-token:{_TOKEN.token_id}", _TOKEN.token_hash, _TOKEN.expires_at, time.time()
)
SESSION.expires_at = float("inf")
# (No /admin/logout: an authentic one would end the session the other examples use.)
PATHS = ["/admin", "/admin/", "/admin/login", "/admin/clients",
         "/admin/clients/rotate", "/admin/clients/disable", "/admin/clients/delete",
         "/admin/tokens", "/admin/tokens/revoke", "/admin/audit", "/admin/events",
         "/admin/events/feed", "/admin/static/htmx.min.js", "/admin/static/../x",
         "/admin/clients/", "/admin//clients", "/admin/x"]  # fmt: skip
FIELDS = ["csrf", "name", "scope", "audiences", "token_ttl", "introspect", "client_id",
          "grace", "token", "admin_token", "x"]  # fmt: skip

cookies = st.sampled_from(
    [None, f"{COOKIE}={SESSION_ID}", f"{COOKIE}=junk", f"a=b; {COOKIE}={SESSION_ID}", "x"]
)
origins = st.sampled_from([None, ISSUER, "https://evil.test", "null", "https://as.test:443"])
fetch_sites = st.sampled_from([None, "same-origin", "same-site", "cross-site", "none"])
values = st.one_of(st.text(max_size=30), st.sampled_from(["on", "60", "0", "svc", "read"]))
csrf_values = st.sampled_from(["", "wrong", "SESSION"])
content_types = st.sampled_from(
    [b"application/x-www-form-urlencoded", b"application/json", b"text/plain", None]
)


@st.composite
def bodies(draw: st.DrawFn, authentic: bool = False) -> tuple[bytes, bool]:
    """A form (or junk), and whether it carries the session's CSRF token (once)."""
    fields = st.sampled_from([f for f in FIELDS if f != "csrf" or not authentic])
    pairs = draw(st.lists(st.tuples(fields, values), max_size=6))
    csrf = "SESSION" if authentic else draw(csrf_values)
    if csrf:
        pairs.append(("csrf", SESSION.csrf if csrf == "SESSION" else csrf))
    if not authentic and draw(st.booleans()):
        return draw(st.binary(max_size=200)), False
    form = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()
    names = [k for k, _ in pairs]
    return form, csrf == "SESSION" and names.count("csrf") == 1


def _call(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers,
             "query_string": b"", "client": ("203.0.113.9", 4000)}  # fmt: skip
    LOOP.run_until_complete(asyncio.wait_for(APP(scope, receive, send), timeout=5))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1].get("body", b"")


def _state() -> tuple[int, int, int]:
    clients = LOOP.run_until_complete(STORE.list_clients())
    disabled = sum(c.disabled for c in clients)
    return len(clients), disabled, LOOP.run_until_complete(STORE.last_position())


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Half the time every ingredient of an authentic form is right but one may not be."""
    authentic = draw(st.booleans())
    pick = (
        (lambda right, anything: right) if authentic else (lambda right, anything: draw(anything))
    )
    origin, fetch_site = draw(st.sampled_from([(ISSUER, None), (None, "same-origin"),
                                               ("null", "same-origin")]))  # fmt: skip
    request = {
        "method": pick("POST", st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"])),
        "path": draw(st.sampled_from(["/admin/clients"]) | st.sampled_from(PATHS)),
        "cookie": pick(f"{COOKIE}={SESSION_ID}", cookies),
        "origin": pick(origin, origins),
        "fetch_site": pick(fetch_site, fetch_sites),
        "content_type": pick(b"application/x-www-form-urlencoded", content_types),
        "body": draw(bodies(authentic)),
    }
    if authentic:  # then spoil at most one ingredient
        ingredients = ["method", "cookie", "origin", "fetch_site", "content_type"]
        spoil = draw(st.none() | st.sampled_from(ingredients))
        alternatives = {
            "method": st.just("GET"),
            "cookie": st.just(f"{COOKIE}=junk"),
            "origin": st.just("https://evil.test"),
            "fetch_site": st.just("cross-site"),
            "content_type": st.just(None),
        }
        if spoil is not None:
            request[spoil] = draw(alternatives[spoil])
    return request


@FUZZ
@given(request=requests())
def test_no_request_breaks_or_forges_the_console(request: dict[str, Any]) -> None:
    """Never 500; HTML answers carry the CSP; only an authentic form changes anything."""
    _check(**request)


def _check(
    method: str,
    path: str,
    cookie: str | None,
    origin: str | None,
    fetch_site: str | None,
    content_type: bytes | None,
    body: tuple[bytes, bool],
) -> None:
    headers = [(b"host", b"as.test")]
    for name, value in ((b"cookie", cookie), (b"origin", origin), (b"sec-fetch-site", fetch_site)):
        if value is not None:
            headers.append((name, value.encode()))
    if content_type is not None:
        headers.append((b"content-type", content_type))
    payload, has_csrf = body
    before = _state()
    status, response_headers, answer = _call(method, path, headers, payload)
    assert status < 500, answer
    assert b"Traceback" not in answer
    if response_headers.get(b"content-type", b"").startswith(b"text/html"):
        assert b"frame-ancestors 'none'" in response_headers[b"content-security-policy"]
        assert response_headers[b"cache-control"] == b"no-store"
    authentic = (
        method == "POST"
        and cookie is not None
        and SESSION_ID in cookie
        and has_csrf
        and content_type == b"application/x-www-form-urlencoded"
        and (
            fetch_site == "same-origin" and origin in (None, "null", ISSUER)
            if fetch_site
            else origin == ISSUER
        )
    )
    if not authentic:
        assert _state() == before
    else:
        event("authentic form: " + ("changed the store" if _state() != before else "no change"))
