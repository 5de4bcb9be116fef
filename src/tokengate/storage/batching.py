"""Coalescing concurrent calls into batches: the PostgreSQL backend's round-trip saver.

Every token lookup or insert made while a batch is in flight joins the next one, so N
concurrent callers cost about two round trips instead of N.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class Coalescer(Generic[_In, _Out]):
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
        self._starting = False  # one of them has not taken a batch yet

    async def submit(self, item: _In) -> _Out:
        """Queue `item` and wait for its batch's outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Out] = loop.create_future()
        self._pending.append((item, future))
        if not self._starting and self._running < self._max_in_flight:
            # The task starts on the next loop iteration: calls made in this one join it.
            self._starting = True
            self._running += 1
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def drain(self) -> None:
        """Wait until every queued call has completed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _flush(self) -> None:
        self._starting = False
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                # A caller cancelled while queued is dropped: its call never happens.
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
