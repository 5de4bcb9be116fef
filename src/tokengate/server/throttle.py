"""Brute-force protection for client authentication (RFC 6749 §2.3.1, RFC 9700 §4.9).

Failures are counted per (client id, source address) and per source address in fixed
windows. Once a key is over its limit, further attempts from it are refused with 429 and
`Retry-After` *before* the secret is checked, so guessing gets no faster by hammering.
The real client is not locked out: an attacker elsewhere fills only its own
(client id, address) bucket and its own address bucket, never the client's. Memory is
bounded: the table is swept when it grows past `max_keys`. Counters live in one process:
with several worker processes each gets a share of the budget (`Limits.shared_by`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tokengate.core.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class Limits:
    """How many failures a key may have per window."""

    per_client_and_address: int = 10
    per_address: int = 50
    window_seconds: float = 60.0

    def shared_by(self, workers: int) -> Limits:
        """Each of `workers` processes' share: the counters live in each process, so every
        budget is divided (rounded up), and the whole server allows at most
        `workers * ceil(limit / workers)` failures per key and window (≤ limit + workers - 1);
        a caller whose connections all reach one worker gets only that worker's share."""
        return Limits(
            per_client_and_address=-(-self.per_client_and_address // workers),
            per_address=-(-self.per_address // workers),
            window_seconds=self.window_seconds,
        )


class AuthThrottle:
    """Fixed-window failure counters keyed by (client id, address) and by address."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[tuple[str, str], tuple[float, int]] = {}

    def _window(self) -> float:
        now = self._clock()
        return now - now % self.limits.window_seconds

    def check(self, client_id: str, address: str) -> None:
        """Raise 429 when this client id from this address, or this address, is over its limit."""
        window = self._window()
        for key, limit in self._keys(client_id, address):
            start, failures = self._counts.get(key, (window, 0))
            if start == window and failures >= limit:
                retry = int(window + self.limits.window_seconds - self._clock()) + 1
                raise TooManyRequests(
                    "too many failed authentications", headers={"Retry-After": str(retry)}
                )

    def failed(self, client_id: str, address: str) -> None:
        """Count one failed authentication."""
        window = self._window()
        if len(self._counts) >= self._max_keys:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            if len(self._counts) >= self._max_keys:
                self._counts.clear()
        for key, _ in self._keys(client_id, address):
            start, failures = self._counts.get(key, (window, 0))
            self._counts[key] = (window, failures + 1 if start == window else 1)

    def _keys(self, client_id: str, address: str) -> tuple[tuple[tuple[str, str], int], ...]:
        return (
            ((client_id, address), self.limits.per_client_and_address),
            (("", address), self.limits.per_address),
        )
