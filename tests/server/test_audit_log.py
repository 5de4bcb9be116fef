"""Security events stay bounded in memory and in the audit table under a flood of distinct keys."""

from __future__ import annotations

import json

import pytest

from tokengate.core.audit import Action
from tokengate.server import audit_log
from tokengate.server.audit_log import OVERFLOW, SecurityEvents
from tokengate.storage.memory import MemoryStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def _refuse_from(events: SecurityEvents, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await events.refused(Action.REGISTRATION_REFUSED, f"10.0.{n // 256}.{n % 256}", "bad token")


async def test_one_row_per_key_and_window() -> None:
    """The same refusal from the same address is audited once per window."""
    store, clock = MemoryStore(), Clock()
    events = SecurityEvents(store, clock, window=60)
    await _refuse_from(events, 1)
    await _refuse_from(events, 1)
    clock.now += 61
    await _refuse_from(events, 1)
    assert len(await store.audit_after()) == 2


async def test_a_flood_beyond_the_bound_writes_one_overflow_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the bound, new keys share one overflow row per window: a cycle of more distinct
    addresses than the table holds cannot make every request write a row again."""
    monkeypatch.setattr(audit_log, "MAX_KEYS", 50)
    store, clock = MemoryStore(), Clock()
    events = SecurityEvents(store, clock, window=60)
    for _ in range(3):  # the same 80 addresses, three times over, inside one window
        await _refuse_from(events, 80)
    rows = await store.audit_after()
    assert len(rows) == 51
    overflow = json.loads(rows[50].detail)
    assert overflow["address"] == OVERFLOW[1]
    assert overflow["reason"] == OVERFLOW[0]


async def test_expired_keys_make_room_before_the_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the window has passed, the table's old keys are dropped and new keys get rows."""
    monkeypatch.setattr(audit_log, "MAX_KEYS", 50)
    store, clock = MemoryStore(), Clock()
    events = SecurityEvents(store, clock, window=60)
    await _refuse_from(events, 50)
    clock.now += 61
    await _refuse_from(events, 50, start=50)
    rows = await store.audit_after()
    assert len(rows) == 100
    assert all(json.loads(row.detail)["address"] != OVERFLOW[1] for row in rows)
