"""An in-process cache of token lookups for the introspection hot path.

Every lookup of a well-formed token is kept, found or not: a token record (active, expired,
revoked, another audience's) or, for a hash storage does not know, `DECOY_TOKEN`, each with its
rendered active answer. A negative entry costs and behaves like a positive one, so the time an
answer takes does not tell an unknown token from one the caller may not see. An entry serves
only the callers that have looked the hash up themselves: another client's lookup never makes a
caller's first look faster (that would tell it someone holds the token). Records are re-checked
against the clock and the caller on every hit (expiry needs no invalidation).

Revocations invalidate entries through the event hub: synchronously for revocations made by
this process, and within one hub poll (SQLite) or one `NOTIFY` (PostgreSQL) for those made by
other processes or replicas, the propagation delay RFC 7009 §2.2 allows for. While the hub is
not keeping up (storage errors), the cache is bypassed entirely, so a stale entry can never
outlive a broken event feed. A negative entry needs no invalidation: a hash unknown now could
only become known if a token with that exact 256-bit value were issued later.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from tokengate.core.models import AccessToken, EventKind, RevocationEvent
from tokengate.core.responses import Response

# The record (or the decoy), its active introspection response, the client ids that looked it up.
Entry = tuple[AccessToken, Response, set[str]]


class TokenCache:
    """token_hash → `Entry`, bounded by count (the oldest lookup is dropped first).

    Keeping the finished response makes a hit cost two lookups and a clock comparison.
    """

    def __init__(self, max_entries: int = 100_000, is_trusted: Callable[[], bool] = lambda: True):
        self.max_entries = max_entries
        self._is_trusted = is_trusted
        # Ordered: evicting the oldest is O(1) (a plain dict's first key is found by a scan).
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, token_hash: str, caller_id: str) -> Entry | None:
        """This caller's cached lookup, or None on a miss or while the event feed is untrusted."""
        if not self._is_trusted():
            return None
        entry = self._entries.get(token_hash)
        return entry if entry is not None and caller_id in entry[2] else None

    def put(self, token_hash: str, token: AccessToken, response: Response, caller_id: str) -> None:
        """Remember what storage said for `token_hash` (a record or the decoy), for this caller."""
        entry = self._entries.get(token_hash)
        callers = entry[2] if entry is not None else set()
        if entry is None and len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        callers.add(caller_id)
        self._entries[token_hash] = (token, response, callers)

    def drop(self, token_hash: str) -> None:
        """Forget one token (revoked by this process)."""
        self._entries.pop(token_hash, None)

    def on_events(self, events: list[RevocationEvent]) -> None:
        """Hub listener: forget revoked tokens and every token of a disabled/deleted client."""
        clients: set[str] = set()
        for event in events:
            if event.token_hash is not None:
                self._entries.pop(event.token_hash, None)
            if event.kind in (EventKind.CLIENT_DISABLED, EventKind.CLIENT_DELETED):
                clients.add(event.client_id)
        if clients:
            self._entries = OrderedDict(
                (h, e) for h, e in self._entries.items() if e[0].client_id not in clients
            )

    def __len__(self) -> int:
        return len(self._entries)
