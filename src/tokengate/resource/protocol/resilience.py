"""Failure handling without I/O: circuit breaker and retry backoff (no lock, clock or sleep).

Callers pass the current monotonic time and the random draw, so tests drive every state
without sleeping. The runtime's client owns one breaker and calls it from its event loop.

Circuit breaker states::

    closed ──(failure_threshold consecutive failures)──▶ open
    open ──(cooldown elapsed; next call is the probe)──▶ half-open
    half-open ──(probe succeeds)──▶ closed
    half-open ──(probe fails)──▶ open (cooldown restarts)

While open, calls fail at once with `CircuitOpen`, whose `retry_after` is the cooldown left.
A probe that never reports (cancelled) is replaced by another after one more cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokengate.resource.protocol.errors import CircuitOpen

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"
STATE_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}  # the `circuit_state` gauge


class CircuitBreaker:
    """Stop calling a failing authorization server for a while."""

    __slots__ = ("_failures", "_since", "_state", "cooldown", "failure_threshold")

    def __init__(self, *, failure_threshold: int = 5, cooldown: float = 5.0) -> None:
        if failure_threshold < 1 or cooldown <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown > 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._state = CLOSED
        self._failures = 0
        self._since = 0.0  # when the circuit opened, or when the current probe started

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open`."""
        return self._state

    def allow(self, now: float) -> None:
        """Let a call through, or raise `CircuitOpen` with the time left to wait."""
        if self._state == CLOSED:
            return
        waited = now - self._since
        if waited < self.cooldown:
            raise CircuitOpen(
                "introspection suspended after repeated failures",
                retry_after=self.cooldown - waited,
            )
        self._since = now  # this call is the probe
        self._state = HALF_OPEN

    def success(self) -> None:
        """The authorization server answered: close the circuit."""
        self._failures = 0
        self._state = CLOSED

    def failure(self, now: float) -> bool:
        """A call failed: count it; True when this opened the circuit (threshold, or probe)."""
        if self._state == OPEN:
            return False  # a call that started before the circuit opened; keep the cooldown
        self._failures += 1
        if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
            self._since = now
            self._state = OPEN
            return True
        return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of connection failures with "full jitter" exponential backoff."""

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 0.5

    def delay(self, retry: int, draw: float) -> float:
        """Seconds to wait before retry number `retry` (0-based); `draw` is uniform in [0, 1)."""
        return draw * min(self.max_delay, self.base_delay * 2.0**retry)


DEFAULT_RETRY = RetryPolicy()
