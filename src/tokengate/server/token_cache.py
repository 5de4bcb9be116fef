"""An in-process cache of token records for the introspection hot path.

Only records of tokens that were active when read are kept; each is re-checked against the
clock on every hit (expiry needs no invalidation). Revocations invalidate entries through
the event hub: synchronously for revocations made by this process, and within one hub poll
(SQLite) or one `NOTIFY` (PostgreSQL) for those made by other processes or replicas, the
propagation delay RFC 7009 §2.2 allows for. While the hub is not keeping up (storage errors),
the cache is bypassed entirely, so a stale entry can never outlive a broken event feed.
"""

from __future__ import annotations

from collections.abc import Callable

from tokengate.core.models import AccessToken, EventKind, RevocationEvent
from tokengate.core.responses import Response

Entry = tuple[AccessToken, Response]


class TokenCache:
    """token_hash → (`AccessToken`, its active introspection response), bounded by count.

    Keeping the finished response makes a hit cost a dictionary lookup and a clock comparison.
    """

    def __init__(self, max_entries: int = 100_000, is_trusted: Callable[[], bool] = lambda: True):
        self.max_entries = max_entries
        self._is_trusted = is_trusted
        self._entries: dict[str, Entry] = {}

    def get(self, token_hash: str) -> Entry | None:
        """A cached record, or None on a miss or while the event feed is not trusted."""
        if not self._is_trusted():
            return None
        return self._entries.get(token_hash)

    def put(self, token: AccessToken, response: Response) -> None:
        """Remember a record read from storage (only unrevoked ones are worth keeping)."""
        if token.revoked_at is not None:
            return
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token.token_hash] = (token, response)

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
            self._entries = {
                h: e for h, e in self._entries.items() if e[0].client_id not in clients
            }

    def __len__(self) -> int:
        return len(self._entries)
