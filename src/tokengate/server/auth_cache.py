"""A small cache of successful client authentications for the hot paths.

Clients authenticate on every call with the same credentials, so re-parsing Basic, hashing
the secret and reading the client row each time is pure overhead. Entries are keyed by the
SHA-256 of the presented `Authorization` value (never the value), live at most `ttl` seconds,
and are dropped as soon as the event log reports a secret rotation, an update, a disable or a
delete for that client (see `EventHub`): within one hub poll interval (SQLite) or one NOTIFY
(PostgreSQL) for changes made by other processes. Token issuance does not depend on that
delay: its insert re-checks the client's state and secret atomically (`add_token`). An entry
made with a previous secret in its rotation grace lives no longer than the grace, so the old
secret stops at the grace end here too, on every replica, with no event needed. While the hub
is not keeping up (`is_trusted()` false: the event log cannot be read), the cache is bypassed,
so a client disabled or rotated elsewhere is never served from it past a broken event feed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tokengate.core.client_auth import Authenticated
from tokengate.core.credentials import hash_value
from tokengate.core.models import EventKind, RevocationEvent

_INVALIDATING = frozenset(
    {
        EventKind.SECRET_ROTATED,
        EventKind.CLIENT_UPDATED,
        EventKind.CLIENT_DISABLED,
        EventKind.CLIENT_DELETED,
    }
)


class AuthCache:
    """Authorization header digest → `Authenticated` client, bounded in size and age."""

    def __init__(
        self,
        ttl: float = 30.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        is_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._is_trusted = is_trusted
        self._entries: dict[str, tuple[Authenticated, float]] = {}

    def get(self, authorization: str) -> Authenticated | None:
        """The cached client for this header value, if still fresh and the event feed is."""
        if not self._is_trusted():
            return None
        key = hash_value(authorization)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry[0]

    def put(self, authorization: str, auth: Authenticated, wall_now: float = 0.0) -> None:
        """Remember a successful authentication; one by a previous secret lives until its grace
        ends (`auth.valid_until`, wall-clock time, compared with `wall_now`)."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare: many distinct callers; start over rather than scan
        ttl = self.ttl
        if auth.valid_until is not None:
            ttl = min(ttl, auth.valid_until - wall_now)
            if ttl <= 0:
                return
        self._entries[hash_value(authorization)] = (auth, self._clock() + ttl)

    def forget(self, client_id: str) -> None:
        """Drop every entry of one client."""
        self._entries = {
            k: v for k, v in self._entries.items() if v[0].client.client_id != client_id
        }

    def on_events(self, events: list[RevocationEvent]) -> None:
        """Hub listener: forget clients whose credentials or state changed."""
        changed = {e.client_id for e in events if e.kind in _INVALIDATING}
        if changed:
            self._entries = {
                k: v for k, v in self._entries.items() if v[0].client.client_id not in changed
            }
