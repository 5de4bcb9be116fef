"""The steps `tokengate demo` walks through, each checked against what it shows.

Every step is one or two HTTP exchanges against the running stack and one transcript line:
what it does, the HTTP status, ✔ or ✘, and a note (on ✘: what was expected instead). Cache
behaviour is shown from the resource server's own `GET /metrics` (`tokengate_rs_*`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import click
import httpx

REVOKED_WITHIN = 2.0  # seconds a revocation may take to show with revocation events
SHORT_TTL = 2.0  # fallback without revocation events: the cache forgets within this
LIVE = 3  # `tokengate_rs_revocation_stream_state` when events are followed


def short(secret: str) -> str:
    """A prefix that identifies a token or secret without disclosing it."""
    return secret[:8] + "…"


@dataclass
class Urls:
    """Where each part of the stack listens."""

    auth: str
    rs: str
    gateway: str  # the edge: nginx + tokengate authz, or the built-in gateway
    edge: str = "the gateway"


class Narrator:
    """Prints numbered steps with their HTTP status and ✔ or ✘; counts failures."""

    def __init__(self) -> None:
        self.count = 0
        self.failed = 0

    def step(self, what: str, status: int, ok: bool, note: str = "", expected: str = "") -> None:
        """One line: on failure the note says what was expected instead."""
        self.count += 1
        self.failed += not ok
        mark, note = ("✔", note) if ok else ("✘", f"expected {expected}")
        click.echo(f"  {self.count}. {what:<58} {status:>3} {mark}  {note}".rstrip())


def walk(
    urls: Urls, app: tuple[str, str], events: bool, remember: Callable[[str], None]
) -> Narrator:
    """The flow itself; each step checks what it shows. `remember` gets the token (test hook)."""
    say = Narrator()
    click.echo("Flow")
    with httpx.Client(timeout=10) as http:
        flow = Flow(say, http, urls, app)
        token = flow.obtain_token()
        remember(token)
        flow.call_twice(token)
        flow.refused_without_token()
        flow.refused_without_scope(token)
        flow.revoke(token, events)
        flow.public()
    return say


@dataclass
class Flow:
    """The steps of the walk-through, each one HTTP exchange (or two) and one line."""

    say: Narrator
    http: httpx.Client
    urls: Urls
    app: tuple[str, str]

    def obtain_token(self) -> str:
        """RFC 6749 §4.4 at the authorization server."""
        form = {"grant_type": "client_credentials", "scope": "read"}
        got = self.http.post(self.urls.auth + "/oauth2/token", data=form, auth=self.app)
        token = str(got.json().get("access_token", "")) if got.status_code == 200 else ""
        what = "POST /oauth2/token (client credentials, scope read)"
        self.say.step(what, got.status_code, bool(token), short(token), "200 with an access token")
        return token

    def call_twice(self, token: str) -> None:
        """The first call introspects at the AS, the second is answered from the RS cache."""
        before = self.metrics()
        first = self.get(token)
        middle = self.metrics()
        calls = _delta(before, middle, "introspection_calls")
        ok = first.status_code == 200 and calls == 1
        what = f"GET /auth-api/hello via {self.urls.edge}, with X-Access-Token"
        note = f"the RS introspected the token at the AS ({calls:g} call)"
        self.say.step(what, first.status_code, ok, note, f"200 after 1 introspection ({calls:g})")
        second = self.get(token)
        after = self.metrics()
        hits = _delta(middle, after, "cache_hits")
        calls = _delta(middle, after, "introspection_calls")
        ok = second.status_code == 200 and hits == 1 and calls == 0
        note = f"cache hit (RS /metrics: +{hits:g} cache hit, +{calls:g} introspections)"
        expected = f"200 from the cache (+{hits:g} hits, +{calls:g} introspections)"
        self.say.step("GET /auth-api/hello again", second.status_code, ok, note, expected)

    def refused_without_token(self) -> None:
        """RFC 6750 §3.1: no credentials, a challenge without an error code."""
        bare = self.get(None)
        challenge = bare.headers.get("www-authenticate", "")
        what = "GET /auth-api/hello without a token"
        self.say.step(what, bare.status_code, bare.status_code == 401, challenge, "401")

    def refused_without_scope(self, token: str) -> None:
        """RFC 6750 §3.1: insufficient_scope."""
        url = self.urls.gateway + "/auth-api/items"
        items = self.http.post(url, headers={"X-Access-Token": token}, json={"name": "x"})
        challenge = items.headers.get("www-authenticate", "")
        ok = items.status_code == 403 and 'error="insufficient_scope"' in challenge
        what = "POST /auth-api/items (needs write; the token has read)"
        note = 'error="insufficient_scope", scope="write"'
        self.say.step(what, items.status_code, ok, note, "403 insufficient_scope")

    def revoke(self, token: str, events: bool) -> None:
        """RFC 7009 revocation, then the same call again until it is refused."""
        before = self.metrics()
        live = events and before.get("revocation_stream_state") == LIVE
        url = self.urls.auth + "/oauth2/revoke"
        revoked = self.http.post(url, data={"token": token}, auth=self.app)
        status = revoked.status_code
        self.say.step("POST /oauth2/revoke (RFC 7009)", status, status == 200, "", "200")
        limit = REVOKED_WITHIN if live else SHORT_TTL + REVOKED_WITHIN
        started = time.monotonic()
        status = self._until_refused(token, started + limit)
        took = time.monotonic() - started
        applied = _delta(before, self.metrics(), "revocation_events_applied")
        if live:
            note = (
                f"{took:.2f} s later: a revocation event (+{applied:g}) evicted the RS cache entry"
            )
        else:
            note = f"{took:.1f} s later: no revocation events; the RS cache entry expired"
        ok = status == 401 and (applied >= 1 or not live)
        what = "GET /auth-api/hello with the revoked token"
        self.say.step(what, status, ok, note, f"401 within {limit:g} s")

    def public(self) -> None:
        """A path the resource server does not protect."""
        ping = self.http.get(self.urls.gateway + "/public/ping")
        what = "GET /public/ping (public, no token)"
        self.say.step(what, ping.status_code, ping.status_code == 200, ping.text, "200")

    def get(self, token: str | None) -> httpx.Response:
        """GET /auth-api/hello through the edge, with the custom header when given a token."""
        headers = {} if token is None else {"X-Access-Token": token}
        return self.http.get(self.urls.gateway + "/auth-api/hello", headers=headers)

    def metrics(self) -> dict[str, float]:
        """The resource server's unlabelled `tokengate_rs_*` samples, prefix and `_total` cut."""
        found: dict[str, float] = {}
        for line in self.http.get(self.urls.rs + "/metrics").text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("tokengate_rs_") and "{" not in name:
                found[name.removeprefix("tokengate_rs_").removesuffix("_total")] = float(value)
        return found

    def _until_refused(self, token: str, deadline: float) -> int:
        while True:
            status = self.get(token).status_code
            if status != 200 or time.monotonic() >= deadline:
                return status
            time.sleep(0.02)


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)
