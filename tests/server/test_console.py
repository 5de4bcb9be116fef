"""The admin console in process: login, the session cookie, CSRF refusals, logout, expiry, and
every page and action (each one audited as the admin token)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tokengate.core.credentials import hash_value
from tokengate.core.models import AdminRole
from tokengate.management.service import Management
from tokengate.server import Settings, create_app
from tokengate.server.console import ConsoleRefused
from tokengate.server.console.guard import COOKIE
from tokengate.server.console.sessions import IDLE_SECONDS
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock

pytestmark = pytest.mark.anyio
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SAME_ORIGIN = {"Origin": ISSUER}


@dataclass
class Console:
    """The app with its console on, a browser-like client (cookie jar) and an admin token."""

    store: MemoryStore
    clock: FakeClock
    http: httpx.AsyncClient
    admin_token: str

    async def login(self, token: str | None = None) -> str:
        """Sign in; the CSRF token of the signed-in session."""
        form = await self.http.get("/admin/login")
        csrf = CSRF.search(form.text)
        assert csrf is not None
        data = {"csrf": csrf.group(1), "admin_token": token or self.admin_token}
        signed_in = await self.http.post("/admin/login", data=data, headers=SAME_ORIGIN)
        assert signed_in.status_code == 303, signed_in.text
        return await self.csrf()

    async def csrf(self) -> str:
        page = await self.http.get("/admin/clients")
        found = CSRF.search(page.text)
        assert found is not None, page.text
        return found.group(1)

    async def post(self, path: str, csrf: str, **fields: str) -> httpx.Response:
        """A same-origin form POST carrying `csrf`."""
        return await self.http.post(
            "/admin" + path, data={"csrf": csrf, **fields}, headers=SAME_ORIGIN
        )

    def session_id(self) -> str | None:
        return self.http.cookies.get(COOKIE)


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    """A fresh app with `admin_console` on, over a memory store, with an admin token."""
    store, clock = MemoryStore(), FakeClock()
    app = create_app(Settings(issuer=ISSUER, admin_console=True), store, clock)
    await app.startup()
    made = await Management(store, "test", clock).create_admin_token(AdminRole.ADMIN, 3600, "")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Console(store, clock, http, made[1])
    await app.shutdown()


def created_secret(page: httpx.Response) -> tuple[str, str]:
    """The client id and the one-time secret shown on a create or rotate page."""
    cid = re.search(r'id="client-id">([^<]+)<', page.text)
    secret = re.search(r'id="client-secret">([^<]+)<', page.text)
    assert cid is not None, page.text
    assert secret is not None
    return cid.group(1), secret.group(1)


async def token_for(http: httpx.AsyncClient, cid: str, secret: str) -> httpx.Response:
    return await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
    )


async def test_console_is_off_unless_enabled() -> None:
    """Without `admin_console` no page under /admin answers (the API still does)."""
    app = create_app(Settings(issuer=ISSUER), MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert (await http.get("/admin/login")).status_code == 404
        assert (await http.get("/admin/static/htmx.min.js")).status_code == 404
        assert (await http.get("/admin/api/clients")).status_code == 401


@pytest.mark.parametrize(
    ("issuer", "secure"),
    [
        pytest.param("https://as.example.test", True, id="https"),
        pytest.param("http://127.0.0.1:9000", False, id="loopback-v4"),
        pytest.param("http://[::1]:9000", False, id="loopback-v6"),
        pytest.param("http://localhost:9000", False, id="localhost"),
    ],
)
async def test_cookie_secure_unless_loopback_http(issuer: str, secure: bool) -> None:
    """The session cookie is `Secure` except for a plain-http issuer on loopback."""
    app = create_app(Settings(issuer=issuer, admin_console=True), MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=issuer) as http:
        cookie = (await http.get("/admin/login")).headers["set-cookie"]
    assert ("; Secure" in cookie) is secure


@pytest.mark.parametrize(
    "issuer", ["http://as.example.test", "http://10.0.0.5:9000", "ftp://127.0.0.1"]
)
def test_console_refuses_a_clear_text_issuer(issuer: str) -> None:
    """A console whose session would cross a network in clear text refuses to start."""
    with pytest.raises(ConsoleRefused, match="https"):
        create_app(Settings(issuer=issuer, admin_console=True), MemoryStore())


async def test_login_sets_a_fresh_strict_session_cookie(console: Console) -> None:
    """Login replaces the login form's pre-session by a new id, in an HttpOnly, Secure,
    SameSite=Strict cookie scoped to /admin; every page carries the security headers."""
    form = await console.http.get("/admin/login")
    before = console.session_id()
    csrf = CSRF.search(form.text)
    assert csrf is not None
    assert before
    data = {"csrf": csrf.group(1), "admin_token": console.admin_token}
    signed_in = await console.http.post("/admin/login", data=data, headers=SAME_ORIGIN)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin/clients"
    cookie = signed_in.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"):
        assert f"; {attribute}" in cookie
    after = console.session_id()
    assert after
    assert after != before
    assert len(after) >= 43
    page = await console.http.get("/admin/clients")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script: only the packaged htmx


@pytest.mark.parametrize(
    ("role", "message"),
    [
        pytest.param(None, "Unknown, expired or revoked", id="unknown-token"),
        pytest.param(AdminRole.REGISTER, "may only register", id="register-role"),
    ],
)
async def test_login_refuses_a_token_that_may_not_manage(
    console: Console, role: AdminRole | None, message: str
) -> None:
    """An unknown token, or an initial access token, is refused (401), audited, no session."""
    token = "tgadm_" + "x" * 43
    if role is not None:
        token = (await Management(console.store, "t", console.clock).create_admin_token(
            role, 60, ""))[1]  # fmt: skip
    form = await console.http.get("/admin/login")
    csrf = CSRF.search(form.text)
    assert csrf is not None
    data = {"csrf": csrf.group(1), "admin_token": token}
    refused = await console.http.post("/admin/login", data=data, headers=SAME_ORIGIN)
    assert refused.status_code == 401
    assert message in refused.text
    assert (await console.http.get("/admin/clients")).status_code == 303
    audit = await console.store.audit_after(0)
    assert [e.action.value for e in audit][-1] == "admin_auth_failed"


@pytest.mark.parametrize(
    ("headers", "csrf"),
    [
        pytest.param(SAME_ORIGIN, None, id="missing-token"),
        pytest.param(SAME_ORIGIN, "wrong", id="wrong-token"),
        pytest.param({"Origin": "https://evil.example"}, "right", id="cross-site-origin"),
        pytest.param({"Origin": "null"}, "right", id="opaque-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, "right", id="cross-site-fetch"),
        pytest.param(
            {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
            "right",
            id="same-origin-fetch-but-foreign-origin",
        ),
        pytest.param({"Origin": ISSUER, "Sec-Fetch-Site": "none"}, "right", id="fetch-site-none"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, "right", id="same-site-not-origin"),
        pytest.param({}, "right", id="no-origin-at-all"),
    ],
)
async def test_csrf_refusals(console: Console, headers: dict[str, str], csrf: str | None) -> None:
    """A POST without the session's CSRF token, or not from our origin, is refused (403) and
    changes nothing."""
    right = await console.login()
    data = {"name": "nope", "scope": "read"}
    if csrf is not None:
        data["csrf"] = right if csrf == "right" else csrf
    refused = await console.http.post("/admin/clients", data=data, headers=headers)
    assert refused.status_code == 403
    assert await console.store.list_clients() == []


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param(None, id="no-origin"),
        pytest.param("null", id="null-origin-under-no-referrer"),
        pytest.param(ISSUER, id="our-origin"),
    ],
)
async def test_same_origin_fetch_metadata_passes(console: Console, origin: str | None) -> None:
    """`Sec-Fetch-Site: same-origin` with our `Origin`, none, or `null` (what Chromium sends
    under `Referrer-Policy: no-referrer`) and the CSRF token pass."""
    csrf = await console.login()
    headers = {"Sec-Fetch-Site": "same-origin"}
    if origin is not None:
        headers["Origin"] = origin
    created = await console.http.post(
        "/admin/clients", data={"csrf": csrf, "name": "ok"}, headers=headers
    )
    assert created.status_code == 200
    assert len(await console.store.list_clients()) == 1


@pytest.mark.parametrize("case", ["no-pre-session", "wrong-csrf", "cross-site"], ids=str)
async def test_login_form_is_csrf_protected(console: Console, case: str) -> None:
    """Login itself needs the form's pre-session, its CSRF token and our origin."""
    form = await console.http.get("/admin/login")
    found = CSRF.search(form.text)
    assert found is not None
    data = {"csrf": found.group(1), "admin_token": console.admin_token}
    headers = dict(SAME_ORIGIN)
    if case == "no-pre-session":
        console.http.cookies.clear()
    elif case == "wrong-csrf":
        data["csrf"] = "x" * 43
    else:
        headers = {"Origin": "https://evil.example"}
    refused = await console.http.post("/admin/login", data=data, headers=headers)
    assert refused.status_code == 403
    assert (await console.http.get("/admin/clients")).status_code == 303


async def test_logout_ends_the_session(console: Console) -> None:
    """After logout the old cookie opens nothing, even sent again."""
    csrf = await console.login()
    old = console.session_id()
    assert old is not None
    out = await console.post("/logout", csrf)
    assert out.status_code == 303
    assert out.headers["location"] == "/admin/login"
    assert "Max-Age=0" in out.headers["set-cookie"]
    console.http.cookies.set(COOKIE, old, domain="as.example.test", path="/admin")
    again = await console.http.get("/admin/clients")
    assert (again.status_code, again.headers["location"]) == (303, "/admin/login")


async def test_idle_session_expires(console: Console) -> None:
    """A session idle for IDLE_SECONDS is over: pages redirect, the htmx feed says HX-Redirect."""
    await console.login()
    console.clock.now += IDLE_SECONDS - 1
    assert (await console.http.get("/admin/clients")).status_code == 200  # touched: idle again
    console.clock.now += IDLE_SECONDS
    assert (await console.http.get("/admin/clients")).status_code == 303
    await console.login()
    console.clock.now += IDLE_SECONDS
    feed = await console.http.get("/admin/events/feed")
    assert feed.headers["hx-redirect"] == "/admin/login"


async def test_session_ends_with_its_admin_token(console: Console) -> None:
    """A session lasts no longer than the admin token it was opened with."""
    short = (await Management(console.store, "t", console.clock).create_admin_token(
        AdminRole.ADMIN, 60, ""))[1]  # fmt: skip
    await console.login(short)
    console.clock.now += 30
    assert (await console.http.get("/admin/clients")).status_code == 200
    console.clock.now += 31
    assert (await console.http.get("/admin/clients")).status_code == 303


async def test_create_shows_the_secret_once_and_it_works(console: Console) -> None:
    """Create renders the secret once (no-store); it gets a token; the list shows the issue;
    the audit log names the admin token as the actor."""
    csrf = await console.login()
    page = await console.post("/clients", csrf, name="svc", scope="read  write", token_ttl="600")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    cid, secret = created_secret(page)
    issued = await token_for(console.http, cid, secret)
    assert issued.status_code == 200
    assert issued.json()["scope"] == "read write"
    listing = await console.http.get("/admin/clients")
    assert cid in listing.text
    assert secret not in listing.text
    row = listing.text.split(f'data-client-id="{cid}"')[1]
    assert '<td class="issued">1</td>' in row
    [entry] = [e for e in await console.store.audit_after(0) if e.action.value == "client_created"]
    token = await console.store.get_admin_token(hash_value(console.admin_token))
    assert token is not None
    assert entry.actor == f"admin-token:{token.token_id}"


async def test_create_refuses_bad_metadata(console: Console) -> None:
    """A bad scope or lifetime is shown as an error (400), nothing created."""
    csrf = await console.login()
    bad = await console.post("/clients", csrf, name="svc", token_ttl="soon")
    assert bad.status_code == 400
    assert await console.store.list_clients() == []


async def test_rotate_with_grace_keeps_the_old_secret(console: Console) -> None:
    """Rotate shows the new secret once; both work during the grace, the old one not after."""
    csrf = await console.login()
    cid, old = created_secret(await console.post("/clients", csrf, name="svc"))
    rotated = await console.post("/clients/rotate", csrf, client_id=cid, grace="60")
    assert rotated.status_code == 200
    _, new = created_secret(rotated)
    assert new != old
    assert "keeps working for 60 seconds" in rotated.text
    assert (await token_for(console.http, cid, new)).status_code == 200
    assert (await token_for(console.http, cid, old)).status_code == 200
    listing = await console.http.get("/admin/clients")
    assert "previous: active" in listing.text
    console.clock.now += 61
    assert (await token_for(console.http, cid, old)).status_code == 401


async def test_disable_and_delete(console: Console) -> None:
    """Disable stops the client's tokens; delete removes it; each says so after the redirect."""
    csrf = await console.login()
    cid, secret = created_secret(await console.post("/clients", csrf, name="svc"))
    disabled = await console.post("/clients/disable", csrf, client_id=cid)
    assert (disabled.status_code, disabled.headers["location"]) == (303, "/admin/clients")
    listing = await console.http.get("/admin/clients")
    assert f"Disabled {cid}." in listing.text
    assert (await token_for(console.http, cid, secret)).status_code == 401
    assert (await console.post("/clients/delete", csrf, client_id=cid)).status_code == 303
    assert await console.store.get_client(cid) is None
    gone = await console.post("/clients/delete", csrf, client_id=cid)
    assert "No such client." in (await console.http.get(gone.headers["location"])).text


async def test_revoke_a_token_by_value(console: Console) -> None:
    """Revoke by value: introspection then says inactive; the live feed shows the event."""
    csrf = await console.login()
    cid, secret = created_secret(await console.post("/clients", csrf, name="svc"))
    rs_id, rs_secret = created_secret(
        await console.post("/clients", csrf, name="rs", introspect="on")
    )
    token = (await token_for(console.http, cid, secret)).json()["access_token"]
    revoked = await console.post("/tokens/revoke", csrf, token=token)
    assert revoked.headers["location"] == "/admin/tokens"
    assert "Token revoked." in (await console.http.get("/admin/tokens")).text
    answer = await console.http.post(
        "/oauth2/introspect", data={"token": token}, auth=(rs_id, rs_secret)
    )
    assert answer.json() == {"active": False}
    await console.post("/tokens/revoke", csrf, token=token)
    assert "No active token" in (await console.http.get("/admin/tokens")).text
    feed = await console.http.get("/admin/events/feed")
    assert "token_revoked" in feed.text
    assert token not in feed.text
    events = await console.http.get("/admin/events")
    assert 'hx-get="/admin/events/feed"' in events.text


async def test_audit_page_lists_actions_newest_first(console: Console) -> None:
    """The audit page shows the console's actions, newest first, filtered by client."""
    csrf = await console.login()
    cid, _ = created_secret(await console.post("/clients", csrf, name="one"))
    other, _ = created_secret(await console.post("/clients", csrf, name="two"))
    await console.post("/clients/disable", csrf, client_id=cid)
    page = await console.http.get("/admin/audit")
    assert page.text.index("client_disabled") < page.text.index("client_created")
    only = await console.http.get("/admin/audit", params={"client_id": other, "window": "0"})
    assert other in only.text
    assert "client_disabled" not in only.text


async def test_values_are_escaped(console: Console) -> None:
    """A client name is HTML-escaped on every page (Jinja2 autoescape)."""
    csrf = await console.login()
    await console.post("/clients", csrf, name="<script>alert(1)</script>")
    listing = await console.http.get("/admin/clients")
    assert "<script>alert(1)</script>" not in listing.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text


async def test_static_htmx_and_unknown_pages(console: Console) -> None:
    """htmx is served from the package (pinned, licence noted); unknown pages are 404."""
    js = await console.http.get("/admin/static/htmx.min.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.text.startswith("/*! htmx 2.0.11")
    assert (await console.http.get("/admin/static/app.py")).status_code == 404
    await console.login()
    assert (await console.http.get("/admin/nowhere")).status_code == 404
    assert (await console.http.get("/admin")).headers["location"] == "/admin/clients"
