"""Security events of the running server, audited: throttling engaged, registration refused,
failed admin authentication.

A refused request is a cheap thing for an attacker to send, so an event is written at most
once per key (what was refused, from which address) per `window` seconds: a flood costs one
row per window, not one per request. The table of keys seen is bounded: when it is full of keys
still inside their window, expired keys are dropped first, and a new key beyond the bound is
audited under one overflow key per action (`OVERFLOW`), so a flood from more distinct addresses
than the bound still writes at most `MAX_KEYS + 1` rows per action and window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tokengate.core.audit import SERVER_ACTOR, Action, Outcome, entry
from tokengate.management.journal import record
from tokengate.storage.base import AuditStore

log = logging.getLogger("tokengate.server")
MAX_KEYS = 10_000
OVERFLOW = ("(more distinct keys than the audit table holds)", "*")


class SecurityEvents:
    """Audits security events, each key at most once per window."""

    def __init__(self, store: AuditStore, clock: Callable[[], float], window: float) -> None:
        self._store = store
        self._clock = clock
        self._window = window
        self._last: dict[tuple[str, str, str], float] = {}
        self._next_expiry = float("-inf")  # no key of the table expires before this time

    async def throttled(self, client_id: str, address: str) -> None:
        """Failed authentications of `client_id` from `address` are now refused with 429."""
        await self._once(Action.THROTTLING_ENGAGED, client_id, address, client_id=client_id)

    async def refused(self, action: Action, address: str, reason: str) -> None:
        """A registration or management request was refused (`reason`: a fixed phrase)."""
        await self._once(action, reason, address, reason=reason)

    async def _once(self, action: Action, key: str, address: str, **detail: str) -> None:
        now = self._clock()
        seen = self._slot((action.value, key, address), now)
        if now - self._last.get(seen, float("-inf")) < self._window:
            return
        self._last[seen] = now
        if seen[1:] == OVERFLOW:
            key, address = OVERFLOW
            detail = {"reason": key} if "reason" in detail else {}
        client_id = detail.pop("client_id", None)
        event = entry(
            action, SERVER_ACTOR, int(now), client_id=client_id, outcome=Outcome.REFUSED,
            address=address, **detail,
        )  # fmt: skip
        try:
            await record(self._store, event)
        except Exception:  # the refusal itself must not fail because the audit write did
            log.warning("could not write the audit entry for %s", action.value, exc_info=True)

    def _slot(self, seen: tuple[str, str, str], now: float) -> tuple[str, str, str]:
        """`seen`, or the action's overflow key when the table is full of unexpired keys."""
        if seen in self._last or len(self._last) < MAX_KEYS:
            return seen
        if now >= self._next_expiry:  # sweep only when some key has expired: a flood of new
            window = self._window  # keys cannot make every request walk the table
            self._last = {k: t for k, t in self._last.items() if now - t < window}
            self._next_expiry = min(self._last.values(), default=now) + window
        if len(self._last) < MAX_KEYS:
            return seen
        return (seen[0], *OVERFLOW)
