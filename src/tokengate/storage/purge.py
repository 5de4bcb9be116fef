"""The pacing every backend's purge shares: keyset batches, oldest `expires_at` first.

A batch deletes up to `pace.batch` expired tokens whose `expires_at` is at or after the cursor
and reports how many it deleted and the newest `expires_at` among them, where the next batch
starts. Walking the `expires_at` index from a cursor, not from its start, keeps each batch's
cost flat: PostgreSQL's index still holds the entries of rows deleted by earlier batches
until vacuum, and rescanning them would make a large purge quadratic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tokengate.storage.base import PurgePace

FIRST = -(2**63)  # below every expires_at: where the keyset starts
Batch = Callable[[int], Awaitable[tuple[int, int]]]  # cursor -> (deleted, last expires_at)


async def paced(
    batch: Batch,
    pace: PurgePace,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> int:
    """Run batches until one comes back short, resting between them (`PurgePace`); the rows
    deleted."""
    total, cursor = 0, FIRST
    while True:
        started = clock()
        deleted, cursor = await batch(cursor)
        total += deleted
        if deleted < pace.batch:
            return total
        await sleep(max(pace.pause, pace.idle_ratio * (clock() - started)))
