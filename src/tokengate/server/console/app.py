"""The admin console under `/admin`: login, sessions and CSRF around the console's pages.

    GET  /admin/login            the login form (starts a pre-session carrying its CSRF token)
    POST /admin/login            an admin token (role `admin`) → a new signed-in session
    POST /admin/logout           end the session
    GET  /admin/static/NAME      htmx and the style sheet (packaged)
    *    /admin/...              the pages of `actions` (signed in only)

Every POST is refused (403) unless it comes from the issuer's origin and carries the session's
CSRF token; a request of an expired session, or of one whose admin token has since expired or
been revoked, is sent back to the login form. Every action runs `LocalOperations` as the admin
token (`admin-token:ID`, the same actor as the management API), so it is audited the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tokengate.asgi.body import BodyReader
from tokengate.asgi.types import Receive, Scope
from tokengate.core.audit import Action
from tokengate.core.errors import OAuthError
from tokengate.core.forms import check_content_type, parse_form, single
from tokengate.core.models import AdminRole
from tokengate.core.responses import Response
from tokengate.management.operations import LocalOperations
from tokengate.management.service import Management
from tokengate.server.admin_auth import AdminGate
from tokengate.server.console import actions
from tokengate.server.console.guard import (
    CONSOLE_PATH,
    BrowserHeaders,
    browser_headers,
    check_issuer,
    cleared_cookie,
    is_loopback_http,
    origin_of,
    session_cookie,
)
from tokengate.server.console.render import Pages, redirect
from tokengate.server.console.sessions import Session, Sessions
from tokengate.server.events import EventHub
from tokengate.storage.base import Store

LOGIN = CONSOLE_PATH + "/login"


class Console:
    """The `/admin` pages (other than `/admin/api`), for `AuthorizationServer` to route to."""

    def __init__(
        self,
        issuer: str,
        store: Store,
        gate: AdminGate,
        body: BodyReader,
        *,
        hub: EventHub,
        clock: Callable[[], float] = time.time,
        sessions: Sessions | None = None,
    ) -> None:
        check_issuer(issuer)
        self.origin = origin_of(issuer)
        self.secure = not is_loopback_http(issuer)
        self.store = store
        self.gate = gate
        self.body = body
        self.hub = hub
        self.clock = clock
        self.sessions = sessions or Sessions()
        self.pages = Pages()

    async def handle(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Response:
        """Answer one request below `/admin`; a refused one with a page saying why."""
        try:
            return await self._handle(scope, receive, headers)
        except OAuthError as exc:
            return self.pages.page("error.html", exc.status_code, message=exc.description)

    async def _handle(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Response:
        method, rest = scope["method"], scope["path"][len(CONSOLE_PATH) :]
        browser = browser_headers(scope)
        if rest.startswith("/static/") and method in ("GET", "HEAD"):
            return self.pages.asset(rest[len("/static/") :]) or self._not_found()
        if rest == "/login":
            return await self._login(method, browser, receive, headers)
        now = self.clock()
        session = self.sessions.get(browser.session_id(), now)
        if session is None or not await self._still_admin(session, now):
            self.sessions.end(browser.session_id())
            return self._to_login(rest)
        return await self._act(scope, receive, headers, browser, session)

    async def _act(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        browser: BrowserHeaders,
        session: Session,
    ) -> Response:
        """A signed-in request: CSRF checks on a POST, then the page or action."""
        method, rest = scope["method"], scope["path"][len(CONSOLE_PATH) :]
        form: dict[str, list[str]] = {}
        if method == "POST":
            if not browser.same_origin(self.origin):
                return self._forbidden("The form came from another site.")
            form = await self._form(receive, headers)
            if not session.csrf_matches(single(form, "csrf")):
                return self._forbidden("The form is stale: reload the page and try again.")
        if (method, rest) == ("POST", "/logout"):
            self.sessions.end(browser.session_id())
            return redirect(LOGIN, ((b"set-cookie", cleared_cookie(self.secure)),))
        assert session.actor is not None
        ops = LocalOperations(Management(self.store, session.actor, self.clock))
        visit = actions.Visit(self.pages, session, ops, form, scope.get("query_string", b""))
        response = await actions.dispatch(method, rest, visit, self.hub)
        if method == "POST":
            self.hub.poke()  # a revocation or disable appended events: tell the hub now
        return response or self._not_found()

    async def _login(
        self, method: str, browser: BrowserHeaders, receive: Receive, headers: dict[str, str]
    ) -> Response:
        now = self.clock()
        session = self.sessions.get(browser.session_id(), now)
        if method == "GET":
            if session is not None and session.signed_in:
                return redirect(CONSOLE_PATH + "/clients")
            return self._login_form(now)
        if method != "POST":
            return self._not_found()
        stale = "The sign-in form expired or came from another site: try again."
        if session is None or not browser.same_origin(self.origin):
            return self._login_form(now, stale, status=403)
        form = await self._form(receive, headers)
        if not session.csrf_matches(single(form, "csrf")):
            return self._login_form(now, stale, status=403)
        return await self._sign_in(browser, single(form, "admin_token") or "", headers, now)

    async def _sign_in(
        self, browser: BrowserHeaders, presented: str, headers: dict[str, str], now: float
    ) -> Response:
        """Check the admin token as the management API does (refusals audited)."""
        attempt = {**headers, "authorization": f"Bearer {presented}"}
        try:
            token = await self.gate.admin(attempt, now, AdminRole.ADMIN, Action.ADMIN_AUTH_FAILED)
        except OAuthError as exc:
            message = (
                "This token may only register clients."
                if exc.status_code == 403
                else "Unknown, expired or revoked admin token."
            )
            return self._login_form(now, message, status=401)
        session_id, session = self.sessions.sign_in(
            browser.session_id() or "",
            f"admin-token:{token.token_id}",
            token.token_hash,
            token.expires_at,
            now,
        )
        cookie = session_cookie(session_id, self.secure, int(session.expires_at - now))
        return redirect(CONSOLE_PATH + "/clients", ((b"set-cookie", cookie),))

    def _login_form(self, now: float, error: str = "", status: int = 200) -> Response:
        session_id, session = self.sessions.start_login(now)
        cookie = session_cookie(session_id, self.secure, int(session.expires_at - now))
        return self.pages.page(
            "login.html",
            status,
            headers=((b"set-cookie", cookie),),
            csrf=session.csrf,
            error=error,
        )

    async def _still_admin(self, session: Session, now: float) -> bool:
        """A signed-in session whose admin token is still usable."""
        if session.admin_token_hash is None:
            return False
        token = await self.store.get_admin_token(session.admin_token_hash)
        return token is not None and token.is_usable(now) and token.role is AdminRole.ADMIN

    async def _form(self, receive: Receive, headers: dict[str, str]) -> dict[str, list[str]]:
        check_content_type(headers.get("content-type"))
        return parse_form(await self.body.read(receive, headers))

    def _to_login(self, rest: str) -> Response:
        """No (live) session: htmx polls are told to load the login page; pages redirect."""
        cleared = (b"set-cookie", cleared_cookie(self.secure))
        if rest.endswith("/feed"):
            return Response(200, b"", ((b"hx-redirect", LOGIN.encode()), cleared))
        return redirect(LOGIN, (cleared,))

    def _forbidden(self, message: str) -> Response:
        return self.pages.page("error.html", 403, message=message)

    def _not_found(self) -> Response:
        return self.pages.page("error.html", 404, message="No such page.")
