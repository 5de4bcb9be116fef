"""An asyncio event loop in a daemon thread: how thread-based code (WSGI) drives the runtime.

Every lookup a thread hands over runs on this one loop, so threads share the validator's
single-flight, shared cache and revocation-event subscriber exactly as ASGI requests do.
The thread is a daemon: a WSGI server has no shutdown hook, and a non-daemon thread would keep
the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a private event loop from any thread, each with a deadline."""

    def __init__(self, name: str = "tokengate-runtime") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop and wait for it; `TimeoutError` (it is cancelled) after
        `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("the runtime did not answer in time") from None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait for the thread (after closing what runs on it)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
