"""Request bodies over ASGI: read whole under a size limit and a deadline, or streamed.

`http.disconnect` while a body is still expected raises `ClientDisconnected`, the one
exception every tokengate app uses for "the peer went away".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tokengate.asgi.types import Receive
from tokengate.core.errors import InvalidRequest, RequestTooLarge


class ClientDisconnected(Exception):
    """The peer went away before the body was complete."""


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as they arrive (nothing held whole)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


_EXPIRED = -1


class BodyReader:
    """Reads request bodies under a size limit and a deadline.

    Slow senders are cut off by one periodic sweep over the reads in progress rather than a
    timer per request: registering a read is a dictionary insert, where `call_later` plus
    cancel cost more than the rest of reading a small body. The sweep runs every
    `timeout / SWEEPS_PER_TIMEOUT` seconds and counts ticks, so a read is cancelled between
    `timeout` and `timeout * (1 + 1 / SWEEPS_PER_TIMEOUT)` seconds after it started.
    """

    SWEEPS_PER_TIMEOUT = 8

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._tick = 0  # sweeps so far
        # read in progress → the tick it began at, or _EXPIRED once the sweep cancelled it
        self._started: dict[asyncio.Task[Any], int] = {}
        self._sweeping: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self, receive: Receive, headers: dict[str, str]) -> bytes:
        """The whole body, refusing more than `limit` bytes (413) or a slow sender (400)."""
        limit = self.limit
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise (
                RequestTooLarge("request body too large")
                if declared.isdigit()
                else InvalidRequest("invalid Content-Length")
            )
        task = asyncio.current_task()
        assert task is not None
        started = self._started
        started[task] = self._tick
        loop = task.get_loop()
        if self._sweeping is None or self._loop is not loop:  # not yet, or an earlier loop's
            self._start_sweeping(loop)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise RequestTooLarge("request body too large")
                if not message.get("more_body", False):
                    return b"".join(chunks) + chunk if chunks else chunk
                chunks.append(chunk)
        except asyncio.CancelledError:
            if started[task] == _EXPIRED and task.uncancel() == 0:
                raise InvalidRequest("request body not received in time") from None
            raise
        finally:
            del started[task]

    def _start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sweeping = loop.call_later(self.timeout / self.SWEEPS_PER_TIMEOUT, self._sweep)

    def _sweep(self) -> None:
        self._tick += 1
        # A read registered at tick t has waited at least SWEEPS_PER_TIMEOUT full sweep
        # intervals once the tick reaches t + SWEEPS_PER_TIMEOUT + 1 (the first interval may
        # have been partly over when it began).
        oldest = self._tick - self.SWEEPS_PER_TIMEOUT - 1
        started = self._started
        for task, tick in started.items():
            if tick != _EXPIRED and tick <= oldest:
                started[task] = _EXPIRED  # updating a present key: safe while iterating
                task.cancel()
        loop = self._loop
        if started and loop is not None and not loop.is_closed():
            self._start_sweeping(loop)
        else:
            self._sweeping = None

    def close(self) -> None:
        """Stop sweeping (reads still in progress are no longer timed); reads after this
        start a new sweep on their own loop."""
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
