"""Security events of the running server, audited: throttling engaged, registration refused,
failed admin authentication.

A refused request is a cheap thing for an attacker to send, so an event is written at most
once per key (what was refused, from which address) per `window` seconds: a flood costs one
row per window, not one per request. The table of keys seen is bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tokengate.core.audit import SERVER_ACTOR, Action, Outcome, entry
from tokengate.management.journal import record
from tokengate.storage.base import AuditStore

log = logging.getLogger("tokengate.server")
MAX_KEYS = 10_000


class SecurityEvents:
    """Audits security events, each key at most once per window."""

    def __init__(self, store: AuditStore, clock: Callable[[], float], window: float) -> None:
        self._store = store
        self._clock = clock
        self._window = window
        self._last: dict[tuple[str, str, str], float] = {}

    async def throttled(self, client_id: str, address: str) -> None:
        """Failed authentications of `client_id` from `address` are now refused with 429."""
        await self._once(Action.THROTTLING_ENGAGED, client_id, address, client_id=client_id)

    async def refused(self, action: Action, address: str, reason: str) -> None:
        """A registration or management request was refused (`reason`: a fixed phrase)."""
        await self._once(action, reason, address, reason=reason)

    async def _once(self, action: Action, key: str, address: str, **detail: str) -> None:
        now = self._clock()
        seen = (action.value, key, address)
        if now - self._last.get(seen, float("-inf")) < self._window:
            return
        if len(self._last) >= MAX_KEYS:
            self._last.clear()
        self._last[seen] = now
        client_id = detail.pop("client_id", None)
        event = entry(
            action, SERVER_ACTOR, int(now), client_id=client_id, outcome=Outcome.REFUSED,
            address=address, **detail,
        )  # fmt: skip
        try:
            await record(self._store, event)
        except Exception:  # the refusal itself must not fail because the audit write did
            log.warning("could not write the audit entry for %s", action.value, exc_info=True)
