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


class Timed:
    """A batch runner taking `seconds` per batch, recording batch sizes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sizes: list[int] = []

    async def run(self, items: list[int]) -> list[int | Exception]:
        self.sizes.append(len(items))
        await asyncio.sleep(self.seconds)
        return list(items)


async def _closed_loop(group: GroupCommit[int, int], writes: int, turnaround: float) -> None:
    """One caller writing again `turnaround` seconds after each write returned."""
    for i in range(writes):
        await group.submit(i)
        await asyncio.sleep(turnaround)


@pytest.mark.parametrize(("gather", "merged"), [(True, True), (False, False)], ids=["gather", "no"])
async def test_gathering_merges_callers_that_take_turns(gather: bool, merged: bool) -> None:
    """Four callers, two of them a little late: without gathering they take turns in batches of
    two for good; with it, after a few batches every commit carries all four."""
    runner = Timed(0.02)
    group = GroupCommit(runner.run, max_in_flight=1, gather=gather)
    early = [asyncio.ensure_future(_closed_loop(group, 8, 0.002)) for _ in range(2)]
    await asyncio.sleep(0.005)  # the first batch is running: these two queue for the next
    late = [asyncio.ensure_future(_closed_loop(group, 8, 0.002)) for _ in range(2)]
    await asyncio.gather(*early, *late)
    assert (runner.sizes[3:6] == [4, 4, 4]) is merged, runner.sizes
    assert sum(runner.sizes) == 32


async def test_gathering_waits_at_most_one_batch_for_a_caller_that_left() -> None:
    """Two callers, then one stops: the other's next write waits no longer than one batch took,
    and the writes after it wait for nobody."""
    runner = Timed(0.02)
    group = GroupCommit(runner.run, max_in_flight=1, gather=True)
    await asyncio.gather(group.submit(1), group.submit(2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await group.submit(3)  # its partner never comes
    assert loop.time() - started < 0.02 + 0.035  # one window (~0.02 s) + its own batch + slack
    started = loop.time()
    await group.submit(4)
    assert loop.time() - started < 0.035  # no wait: only one caller is expected now


async def test_a_lone_caller_never_waits_to_gather() -> None:
    """One caller writing in sequence: each write runs at once, in a batch of its own."""
    runner = Timed(0.005)
    group = GroupCommit(runner.run, max_in_flight=1, gather=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(5):
        assert await group.submit(i) == i
    assert loop.time() - started < 5 * 0.005 + 0.03
    assert runner.sizes == [1, 1, 1, 1, 1]


def test_gathering_needs_one_batch_at_a_time() -> None:
    """`gather` with batches in parallel is refused when the group is made."""
    with pytest.raises(ValueError, match="max_in_flight=1"):
        GroupCommit(Recorder().run, max_in_flight=2, gather=True)
