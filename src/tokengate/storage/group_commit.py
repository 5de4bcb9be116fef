"""Group commit: concurrent calls share one batch, so N callers cost one transaction or trip.

The one batching mechanism of the SQL backends: SQLite's writer (one group transaction and one
fsync per batch, `max_in_flight=1`) and PostgreSQL's token lookups and inserts (one round trip
per batch, two batches on the wire at once). Every call made while a batch is running joins
the next one; a caller cancelled while queued is dropped (its call never happens).

With one batch at a time, `gather` waits for callers to come back before a batch starts, as
PostgreSQL's `commit_delay` does. Without it, N callers that each write again as soon as
their last write returned (a connection pool, a load generator) split into two halves that
take turns: one half commits while the other waits, so every write waits for two commits
(measured, SQLite at 32 connections: batches of 16, not 32). Gathering starts a batch once as
many callers are queued as were last seen waiting at once, or when the previous batch's
duration has passed (so a gathered write waits at most one commit more, and never after the
writer was idle that long): one batch of N per commit instead of two of N/2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

MAX_GATHER = 0.01  # seconds a batch waits at most for callers to come back (`gather`)
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
        gather: bool = False,
    ) -> None:
        if gather and max_in_flight != 1:
            raise ValueError("gather needs max_in_flight=1")
        self._run = run
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._gather = gather
        self._callers = 0  # the most calls seen waiting at once (in a batch or queued)
        self._in_batch = 0  # calls in the batch being run
        self._window = 0.0  # the last batch's duration: the longest a batch waits to gather
        self._idle_since = 0.0  # when the last flush task found nothing left to run
        self._gathering: asyncio.Future[None] | None = None
        self._pending: list[tuple[_In, asyncio.Future[_Out]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0  # flush tasks not yet past their last look at `_pending`
        self._unstarted: asyncio.Task[None] | None = None  # one has not taken a batch yet

    async def submit(self, item: _In) -> _Out:
        """Queue `item` and wait for its batch's outcome."""
        future: asyncio.Future[_Out] = asyncio.get_running_loop().create_future()
        pending = self._pending
        pending.append((item, future))
        if self._gather:
            self._count_callers(len(pending))
        if self._unstarted is None and self._running < self._max_in_flight:
            self._start()
        return await future

    def _count_callers(self, queued: int) -> None:
        waiting = queued + self._in_batch
        if waiting > self._callers:  # noqa: PLR1730 (no call on the hot path)
            self._callers = waiting
        gathering = self._gathering
        if gathering is not None and queued >= self._callers and not gathering.done():
            gathering.set_result(None)

    async def drain(self) -> None:
        """Wait until every queued call has completed."""
        while self._tasks or self._pending:
            if not self._tasks:  # the last flush was cancelled with calls still queued
                self._start()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self) -> None:
        # The task starts on the next loop iteration: calls made in this one join it.
        if self._gather and time.monotonic() - self._idle_since > self._window:
            self._callers = len(self._pending)  # idle for a while: nobody is coming back
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
                if self._gather and len(self._pending) < self._callers:
                    await self._gather_callers()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._in_batch = len(batch)
                started = time.monotonic()
                try:
                    await self._settle([entry for entry in batch if not entry[1].done()])
                finally:
                    self._in_batch = 0
                    self._window = min(time.monotonic() - started, MAX_GATHER)
        finally:
            # Counted down right after the last look at `_pending`, with no await between:
            # a call queued from now on starts a new task instead of waiting for this one.
            self._running -= 1
            self._idle_since = time.monotonic()

    async def _gather_callers(self) -> None:
        """Wait until as many calls are queued as callers were last seen, or `_window` ends;
        at the window's end, expect only as many callers as came."""
        loop = asyncio.get_running_loop()
        gathering = self._gathering = loop.create_future()
        timer = loop.call_later(self._window, _resolve, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None
        self._callers = min(self._callers, len(self._pending))

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


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
