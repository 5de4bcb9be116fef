"""GroupCommit: batching, per-call failures, batch failures, cancellation, drain."""

from __future__ import annotations

import asyncio

import pytest

from tokengate.storage.group_commit import GroupCommit

pytestmark = pytest.mark.anyio


class Recorder:
    """A batch runner that records its batches; negative inputs fail alone, 0 fails the batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def run(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await asyncio.sleep(0)
        if 0 in items:
            raise RuntimeError("transaction failed")
        return [ValueError(str(i)) if i < 0 else i * 10 for i in items]


async def test_calls_made_together_share_one_batch() -> None:
    """Calls queued in one loop iteration run as one batch; each gets its own result."""
    rec = Recorder()
    group = GroupCommit(rec.run, max_in_flight=1)
    assert await asyncio.gather(*(group.submit(i) for i in range(1, 6))) == [10, 20, 30, 40, 50]
    assert rec.batches == [[1, 2, 3, 4, 5]]


async def test_max_batch_splits_a_burst() -> None:
    """A burst larger than max_batch runs as several batches, in order."""
    rec = Recorder()
    group = GroupCommit(rec.run, max_batch=2, max_in_flight=1)
    await asyncio.gather(*(group.submit(i) for i in range(1, 6)))
    assert rec.batches == [[1, 2], [3, 4], [5]]


async def test_an_exception_outcome_fails_only_its_caller() -> None:
    """A per-item exception reaches that caller; the others in the batch succeed."""
    group = GroupCommit(Recorder().run)
    results = await asyncio.gather(group.submit(1), group.submit(-1), return_exceptions=True)
    assert results[0] == 10
    assert isinstance(results[1], ValueError)


async def test_a_failed_batch_fails_every_caller_in_it() -> None:
    """If the runner raises, every caller of that batch gets the error."""
    group = GroupCommit(Recorder().run)
    results = await asyncio.gather(group.submit(1), group.submit(0), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_caller_cancelled_while_queued_is_dropped() -> None:
    """A call cancelled before its batch starts never reaches the runner."""
    rec = Recorder()
    group = GroupCommit(rec.run, max_in_flight=1)
    kept = asyncio.ensure_future(group.submit(1))
    dropped = asyncio.ensure_future(group.submit(2))
    await asyncio.sleep(0)  # both queued; the flush task has not run yet
    dropped.cancel()
    assert await kept == 10
    assert rec.batches == [[1]]


async def test_drain_finishes_calls_left_by_a_cancelled_flush() -> None:
    """A flush task cancelled before it starts neither wedges the group nor loses calls."""
    rec = Recorder()
    group = GroupCommit(rec.run, max_in_flight=1)
    waiting = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0)
    for task in list(group._tasks):
        task.cancel()
    await asyncio.sleep(0)
    await group.drain()
    assert await waiting == 10
    assert await group.submit(2) == 20  # and new calls still start a flush
