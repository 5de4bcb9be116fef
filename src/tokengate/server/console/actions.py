"""The console's pages and actions, for a signed-in session whose POST passed the CSRF checks.

A client is named by a form field, never by a path segment (operator-chosen client ids may hold
any character). A new secret is rendered into the one answer that creates it (`no-store`) and
is kept nowhere else. Actions run `LocalOperations`, so they are validated and audited exactly
as the management API's are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tokengate.core.errors import InvalidClientMetadata, InvalidRequest
from tokengate.core.forms import single
from tokengate.core.registration import (
    AUDIENCES,
    DEFAULT_TTL,
    INTROSPECT,
    TOKEN_TTL,
    parse_metadata,
)
from tokengate.core.responses import Response
from tokengate.management.operations import LocalOperations
from tokengate.management.service import MAX_GRACE
from tokengate.server.console.guard import CONSOLE_PATH
from tokengate.server.console.render import Pages, redirect
from tokengate.server.console.sessions import Session
from tokengate.server.events import EventHub

AUDIT_PAGE = 500
FEED_LENGTH = 50
AUDIT_WINDOWS = {"3600": "last hour", "86400": "last day", "604800": "last week", "0": "all"}
MAX_FLASH = 5


@dataclass(frozen=True, slots=True)
class Visit:
    """One request's context: the templates, the session, the operations, the form, the query."""

    pages: Pages
    session: Session
    ops: LocalOperations
    form: dict[str, list[str]]
    query: bytes

    def field(self, name: str) -> str:
        """A form field ("" when absent)."""
        return single(self.form, name) or ""

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        """A full page: the session's CSRF token and pending messages go into every one."""
        flash, self.session.flash[:] = list(self.session.flash), []
        return self.pages.page(
            template, status, csrf=self.session.csrf, flash=flash, actor=self.session.actor,
            **context,
        )  # fmt: skip

    def done(self, message: str, to: str) -> Response:
        """Say `message` on the next page, and go there (POST → redirect → GET)."""
        self.session.flash[:] = [*self.session.flash[-MAX_FLASH + 1 :], message]
        return redirect(CONSOLE_PATH + to)


Page = Callable[[Visit, EventHub], Awaitable[Response]]


async def dispatch(method: str, rest: str, visit: Visit, hub: EventHub) -> Response | None:
    """The page or action at `rest` (None: no such page)."""
    if method == "GET" and rest in ("", "/"):
        return redirect(CONSOLE_PATH + "/clients")
    handler = ROUTES.get((method if method != "HEAD" else "GET", rest))
    return None if handler is None else await handler(visit, hub)


async def clients(visit: Visit, hub: EventHub) -> Response:
    """Every client, with tokens issued in the last hour and the last issue."""
    listed = sorted(await visit.ops.list_clients(), key=lambda c: (c["disabled"], c["name"]))
    return visit.page("clients.html", clients=listed, max_grace=MAX_GRACE)


async def create(visit: Visit, hub: EventHub) -> Response:
    """Create a client and show its secret, this once."""
    ttl = visit.field("token_ttl") or str(DEFAULT_TTL)
    if not ttl.isdigit() or len(ttl) > 9:
        raise InvalidClientMetadata("the token lifetime must be a whole number of seconds")
    metadata = parse_metadata(
        {
            "client_name": visit.field("name"),
            "scope": " ".join(visit.field("scope").split()),
            AUDIENCES: visit.field("audiences").split(),
            INTROSPECT: visit.field("introspect") == "on",
            TOKEN_TTL: int(ttl),
        },
        may_introspect=True,
    )
    made = await visit.ops.create_client(metadata)
    return visit.page("secret.html", what="created", **made)


async def rotate(visit: Visit, hub: EventHub) -> Response:
    """A new secret for a client; the old one keeps working `grace` seconds."""
    grace = visit.field("grace") or "0"
    if not grace.isdigit() or int(grace) > MAX_GRACE:
        raise InvalidRequest(f"the grace must be 0 to {MAX_GRACE} seconds")
    rotated = await visit.ops.rotate_secret(_client_id(visit), int(grace))
    if rotated is None:
        return visit.done("No such client.", "/clients")
    return visit.page("secret.html", what="rotated", grace=int(grace), **rotated)


async def disable(visit: Visit, hub: EventHub) -> Response:
    """Disable a client, revoking its tokens."""
    client_id = _client_id(visit)
    ok = await visit.ops.disable_client(client_id)
    return visit.done(f"Disabled {client_id}." if ok else "No such client.", "/clients")


async def delete(visit: Visit, hub: EventHub) -> Response:
    """Delete a client and its tokens."""
    client_id = _client_id(visit)
    ok = await visit.ops.delete_client(client_id)
    return visit.done(f"Deleted {client_id}." if ok else "No such client.", "/clients")


async def tokens(visit: Visit, hub: EventHub) -> Response:
    """The revoke-by-value form."""
    return visit.page("tokens.html")


async def revoke(visit: Visit, hub: EventHub) -> Response:
    """Revoke an access token by its value (RFC 7009 semantics: unknown is not an error)."""
    token = visit.field("token").strip()
    if not 0 < len(token) <= 512:
        raise InvalidRequest("paste the access token to revoke")
    revoked = await visit.ops.revoke_token(token)
    message = "Token revoked." if revoked else "No active token has that value."
    return visit.done(message, "/tokens")


async def audit(visit: Visit, hub: EventHub) -> Response:
    """Audit entries of a window (newest first), optionally of one client."""
    query = _query(visit.query)
    window = query.get("window", "86400")
    window = window if window in AUDIT_WINDOWS else "86400"
    client_id = query.get("client_id") or None
    since = int(visit.ops.management.clock()) - int(window) if window != "0" else 0
    entries = await visit.ops.audit(since, client_id, 0, AUDIT_PAGE + 1)
    return visit.page(
        "audit.html", entries=list(reversed(entries[:AUDIT_PAGE])),
        truncated=len(entries) > AUDIT_PAGE, windows=AUDIT_WINDOWS, window=window,
        client_id=client_id or "", limit=AUDIT_PAGE,
    )  # fmt: skip


async def events(visit: Visit, hub: EventHub) -> Response:
    """The live view of revocation events (the feed below, polled by htmx)."""
    return visit.page("events.html", events=await _recent(visit, hub))


async def feed(visit: Visit, hub: EventHub) -> Response:
    """The newest revocation events as table rows (the fragment htmx swaps in)."""
    return visit.pages.page("events_feed.html", events=await _recent(visit, hub))


async def _recent(visit: Visit, hub: EventHub) -> list[object]:
    """The last FEED_LENGTH events the hub has seen, newest first."""
    store = visit.ops.store
    head = max(hub.position, await store.last_position())
    found = await store.events_after(max(0, head - FEED_LENGTH), FEED_LENGTH)
    return list(reversed(found))


def _client_id(visit: Visit) -> str:
    client_id = visit.field("client_id")
    if not client_id or len(client_id) > 200:
        raise InvalidRequest("no client named")
    return client_id


def _query(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode("ascii"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("malformed query") from None
    return {k: v[0] for k, v in parsed.items()}


ROUTES: dict[tuple[str, str], Page] = {
    ("GET", "/clients"): clients,
    ("POST", "/clients"): create,
    ("POST", "/clients/rotate"): rotate,
    ("POST", "/clients/disable"): disable,
    ("POST", "/clients/delete"): delete,
    ("GET", "/tokens"): tokens,
    ("POST", "/tokens/revoke"): revoke,
    ("GET", "/audit"): audit,
    ("GET", "/events"): events,
    ("GET", "/events/feed"): feed,
}
