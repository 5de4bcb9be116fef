"""Failure handling without I/O: circuit breaker, retry backoff and deadlines.

Clocks and randomness are injected, so tests drive them without sleeping.

Circuit breaker states::

    closed ──(failure_threshold consecutive failures)──▶ open
    open ──(cooldown elapsed; next call is the probe)──▶ half-open
    half-open ──(probe succeeds)──▶ closed
    half-open ──(probe fails)──▶ open (cooldown restarts)

While open, calls fail at once with `CircuitOpen`, whose `retry_after` is the cooldown left.
A probe that never reports (cancelled) is replaced by another after one more cooldown.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tokengate.resource.errors import CircuitOpen
from tokengate.resource.stats import Stats

Clock = Callable[[], float]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"
STATE_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}  # the `circuit_state` gauge


class CircuitBreaker:
    """Stop calling a failing authorization server for a while; thread-safe."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 5.0,
        clock: Clock = time.monotonic,
        stats: Stats | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown > 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.stats = stats if stats is not None else Stats()
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._since = 0.0  # when the circuit opened, or when the current probe started

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open`."""
        return self._state

    def allow(self) -> None:
        """Let a call through, or raise `CircuitOpen` with the time left to wait."""
        with self._lock:
            if self._state == CLOSED:
                return
            now = self._clock()
            waited = now - self._since
            if waited < self.cooldown:
                raise CircuitOpen(
                    "introspection suspended after repeated failures",
                    retry_after=self.cooldown - waited,
                )
            self._since = now  # this call is the probe
            self._enter(HALF_OPEN)

    def success(self) -> None:
        """The authorization server answered: close the circuit."""
        with self._lock:
            self._failures = 0
            if self._state != CLOSED:
                self._enter(CLOSED)

    def failure(self) -> None:
        """A call failed: count it, and open the circuit at the threshold or on a failed probe."""
        with self._lock:
            if self._state == OPEN:
                return  # a call that started before the circuit opened; keep the cooldown
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self.stats.circuit_opened.inc()
                self._since = self._clock()
                self._enter(OPEN)

    def _enter(self, state: str) -> None:
        self._state = state
        self.stats.circuit_state.set(STATE_CODES[state])


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of connection failures with "full jitter" exponential backoff."""

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 0.5

    def delay(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        return rng() * min(self.max_delay, self.base_delay * 2.0**retry)


DEFAULT_RETRY = RetryPolicy()


class Deadline:
    """A point in time after which the whole operation must have given up."""

    __slots__ = ("_clock", "_end")

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())
