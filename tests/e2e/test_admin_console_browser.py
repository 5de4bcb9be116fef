"""The admin console in a real browser: Debian's Chromium, driven by Playwright, against a real
`tokengate serve --admin-console` process (SQLite and PostgreSQL).

One walk through every page an operator uses: sign in with an admin token, create a client
(its one-time secret read off the page gets a token over HTTP), rotate with grace (both
secrets work), revoke a token by value (introspection says inactive; the live events view,
polled by htmx under the CSP, shows it), disable, read the audit log, sign out. A screenshot
of each step is kept (the path is printed). Afterwards no session id, CSRF token, admin token,
client secret or access token is in the logs, the database, the metrics or the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.browser import artifacts_dir, chromium, require_chromium
from tests.support.hygiene import assert_nowhere, database_dump
from tests.support.servers import ServerProcess, create_client, run_cli, running_server

if TYPE_CHECKING:  # playwright itself is imported when a browser starts
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e
SERVE_ARGS = ["--admin-console", "--log-format", "json", "--access-log", "--log-level", "debug"]


@pytest.fixture
def console_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A `tokengate serve --admin-console` on loopback, JSON debug and access logs on."""
    require_chromium()
    with running_server(database_url, log_dir=tmp_path, extra_args=SERVE_ARGS) as server:
        yield server


class Walk:
    """The browser page, the server, and what the walk has seen (to grep for afterwards)."""

    def __init__(self, page: Page, server: ServerProcess, shots: Path) -> None:
        self.page = page
        self.server = server
        self.shots = shots
        self.step = 0
        self.seen: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, path: str) -> None:
        self.page.goto(self.server.base_url + path)

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(path=self.shots / f"{self.step:02d}-{name}.png", full_page=True)

    def csrf(self) -> str:
        value = self.page.locator('input[name="csrf"]').first.get_attribute("value")
        assert value
        self.seen.append(value)
        return value

    def secret_shown(self) -> tuple[str, str]:
        """The client id and the one-time secret on a create or rotate page."""
        cid = self.page.locator("#client-id").inner_text()
        secret = self.page.locator("#client-secret").inner_text()
        self.seen.append(secret)
        return cid, secret

    def token(self, cid: str, secret: str) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        return httpx.post(self.server.base_url + "/oauth2/token", data=form, auth=(cid, secret))


def test_admin_console_in_chromium(
    console_server: ServerProcess, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Login, create (secret once, works over HTTP), rotate with grace, revoke by value
    (introspection inactive, live view shows it), disable, audit log, logout, in Chromium."""
    server = console_server
    made = json.loads(
        run_cli("admin-tokens", "create", "--admin", "--json", "--database", database_url)
    )
    admin_token = made["admin_token"]
    rs_id, rs_secret = create_client(database_url, "rs", "", introspect=True)
    shots = artifacts_dir(f"admin-console/{request.node.callspec.id}", tmp_path)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        walk = Walk(context.new_page(), server, shots)
        _sign_in(walk, admin_token)
        cid, secret = _create(walk)
        new_secret = _rotate(walk, cid, secret)
        token = _revoke(walk, cid, new_secret, (rs_id, rs_secret))
        _disable(walk, cid, new_secret)
        _audit(walk, cid)
        cookies = [c.get("value", "") for c in context.cookies()]
        walk.seen += [c for c in cookies if c]
        _sign_out(walk)
        context.close()
    assert walk.errors == []  # no CSP violation, no script error on any page
    assert len(list(shots.glob("*.png"))) == walk.step
    audit = run_cli("audit", "--json", "--database", database_url).encode()
    metrics = httpx.get(server.base_url + "/metrics").content
    secrets = [admin_token, secret, new_secret, token, rs_secret, *walk.seen]
    places = {"logs": server.log_path.read_bytes(), "database": database_dump(database_url)}
    assert_nowhere(secrets, {**places, "metrics": metrics, "audit log": audit})


def _sign_in(walk: Walk, admin_token: str) -> None:
    walk.goto("/admin/clients")
    assert walk.page.url.endswith("/admin/login")  # not signed in: sent to the login form
    walk.csrf()
    walk.page.fill("#admin_token", admin_token)
    walk.shot("login")
    walk.page.click("#sign-in")
    walk.page.wait_for_url("**/admin/clients")
    walk.csrf()


def _create(walk: Walk) -> tuple[str, str]:
    walk.page.fill("#name", "billing service")
    walk.page.fill("#scope", "read write")
    walk.shot("create-form")
    walk.page.click("#create-client")
    cid, secret = walk.secret_shown()
    walk.shot("created-secret-once")
    issued = walk.token(cid, secret)
    assert issued.status_code == 200, issued.text
    walk.seen.append(issued.json()["access_token"])
    walk.goto("/admin/clients")
    assert secret not in walk.page.content()  # shown once: not on the list
    assert walk.page.locator(f'tr[data-client-id="{cid}"] td.issued').inner_text() == "1"
    walk.shot("clients")
    return cid, secret


def _rotate(walk: Walk, cid: str, old: str) -> str:
    row = walk.page.locator(f'tr[data-client-id="{cid}"]')
    row.locator("input.grace").fill("300")
    row.locator("button.rotate").click()
    _, new = walk.secret_shown()
    assert new != old
    assert "keeps working for 300 seconds" in walk.page.content()
    walk.shot("rotated-with-grace")
    assert walk.token(cid, old).status_code == 200  # the grace: the old secret still works
    assert walk.token(cid, new).status_code == 200
    walk.goto("/admin/clients")
    secrets = walk.page.locator(f'tr[data-client-id="{cid}"] td.secrets').inner_text()
    assert "previous: active" in secrets
    return new


def _revoke(walk: Walk, cid: str, secret: str, rs: tuple[str, str]) -> str:
    token = walk.token(cid, secret).json()["access_token"]
    walk.goto("/admin/events")  # the live view, open before the revocation
    walk.goto("/admin/tokens")
    walk.page.fill("#token", token)
    walk.page.click("#revoke")
    walk.page.wait_for_url("**/admin/tokens")
    assert "Token revoked." in walk.page.content()
    walk.shot("revoked")
    answer = httpx.post(walk.server.base_url + "/oauth2/introspect", data={"token": token}, auth=rs)
    assert answer.json() == {"active": False}
    walk.goto("/admin/events")
    events = walk.page.locator("#events")
    events.locator("tr", has_text="token_revoked").wait_for(timeout=5000)
    before = events.locator("tr").count()
    revoked_too = walk.token(cid, secret).json()["access_token"]
    walk.seen.append(revoked_too)
    httpx.post(walk.server.base_url + "/oauth2/revoke", data={"token": revoked_too},
               auth=(cid, secret))  # fmt: skip
    # htmx polls the feed every second: the new event appears without a reload
    events.locator("tr").nth(before).wait_for(timeout=10_000)  # (our CSP forbids eval)
    walk.shot("live-revocation-events")
    return token


def _disable(walk: Walk, cid: str, secret: str) -> None:
    walk.goto("/admin/clients")
    walk.page.locator(f'tr[data-client-id="{cid}"] button.disable').click()
    walk.page.wait_for_url("**/admin/clients")
    assert walk.page.locator(f'tr[data-client-id="{cid}"] td.state').inner_text() == "disabled"
    walk.shot("disabled")
    assert walk.token(cid, secret).status_code == 401


def _audit(walk: Walk, cid: str) -> None:
    walk.goto("/admin/audit")
    text = walk.page.locator("#audit").inner_text()
    for action in ("client_created", "client_secret_rotated", "token_revoked", "client_disabled"):
        assert action in text
    assert "admin-token:tgadmid_" in text  # the admin credential is the actor
    walk.shot("audit-log")


def _sign_out(walk: Walk) -> None:
    walk.page.click("#logout")
    walk.page.wait_for_url("**/admin/login")
    walk.goto("/admin/clients")
    assert walk.page.url.endswith("/admin/login")
    walk.shot("signed-out")
