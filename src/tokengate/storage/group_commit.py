"""Group commit: concurrent calls share one batch, so N callers cost one transaction or trip.

The one batching mechanism of the SQL backends: SQLite's writer (one group transaction and one
fsync per batch, `max_in_flight=1`) and PostgreSQL's token lookups and inserts (one round trip
per batch, two batches on the wire at once). Every call made while a batch is running joins
the next one; a caller cancelled while queued is dropped (its call never happens).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class GroupCommit(Generic[_In, _Out]):
    """Runs concurrent calls in batches: calls made while batches are running join the next.

    `run` gets the batch's inputs and returns one output per input, an `Exception` instance
    failing just that caller; if `run` raises, every caller in the batch gets the error.
    """

    def __init__(
        self,
        run: Callable[[list[_In]], Awaitable[Sequence[_Out | Exception]]],
        *,
        max_batch: int = 1000,
        max_in_flight: int = 2,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[_In, asyncio.Future[_Out]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0  # flush tasks not yet past their last look at `_pending`
        self._unstarted: asyncio.Task[None] | None = None  # one has not taken a batch yet

    async def submit(self, item: _In) -> _Out:
        """Queue `item` and wait for its batch's outcome."""
        future: asyncio.Future[_Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._unstarted is None and self._running < self._max_in_flight:
            self._start()
        return await future

    async def drain(self) -> None:
        """Wait until every queued call has completed."""
        while self._tasks or self._pending:
            if not self._tasks:  # the last flush was cancelled with calls still queued
                self._start()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self) -> None:
        # The task starts on the next loop iteration: calls made in this one join it.
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._flush())
        self._unstarted = task
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._unstarted is task:  # cancelled before its first step: `_flush` never ran
            self._unstarted = None
            self._running -= 1

    async def _flush(self) -> None:
        self._unstarted = None
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._settle([entry for entry in batch if not entry[1].done()])
        finally:
            # Counted down right after the last look at `_pending`, with no await between:
            # a call queued from now on starts a new task instead of waiting for this one.
            self._running -= 1

    async def _settle(self, batch: list[tuple[_In, asyncio.Future[_Out]]]) -> None:
        if not batch:
            return
        outcomes: Sequence[_Out | Exception]
        try:
            outcomes = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the whole batch failed: every caller gets the error
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
