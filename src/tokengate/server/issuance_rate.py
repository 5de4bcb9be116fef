"""Per-client token issuance rate limits: a token bucket per client id (RFC 6585 §4 status).

Each authenticated client may be issued `per_second` tokens a second on average, `burst` at
once; past it the token endpoint answers 429 `temporarily_unavailable` with `Retry-After` (see
`core.errors.IssuanceRateExceeded` for why that code). The check runs after authentication,
so only real clients get buckets; the table holds at most `max_clients` of them, dropping the
least recently used, which has been idle longest and so is the fullest (a full bucket and no
bucket are the same). Limits are per process: N processes allow N times the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tokengate.core.errors import IssuanceRateExceeded


@dataclass(frozen=True, slots=True)
class TokenRate:
    """`per_second` tokens a second per client on average, `burst` at most at once."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            raise ValueError("the rate must be a positive number of tokens per second")
        if self.burst < 1:
            raise ValueError("the burst must be at least 1")

    @classmethod
    def parse(cls, text: str) -> TokenRate:
        """`PER_SECOND[:BURST]`; the burst defaults to one second's worth (at least 1)."""
        rate, _, burst = text.partition(":")
        try:
            parsed = cls(float(rate), int(burst) if burst else 1)  # checks both
        except ValueError as exc:
            raise ValueError(
                f"{text!r}: want PER_SECOND[:BURST], e.g. 50 or 50:200 ({exc})"
            ) from None
        return parsed if burst else cls(parsed.per_second, math.ceil(parsed.per_second))


class IssuanceLimiter:
    """Token buckets keyed by client id, in a bounded table."""

    def __init__(
        self,
        rate: TokenRate,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (level, at)

    def take(self, client_id: str) -> None:
        """Spend one token of `client_id`'s bucket, or raise `IssuanceRateExceeded`."""
        now = self._clock()
        level = self._level(client_id, now)
        if level < 1.0:
            wait = math.ceil((1.0 - level) / self.rate.per_second)
            raise IssuanceRateExceeded(
                "token issuance rate exceeded for this client",
                headers={"Retry-After": str(max(1, wait))},
            )
        self._buckets[client_id] = (level - 1.0, now)
        self._buckets.move_to_end(client_id)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, client_id: str, now: float) -> float:
        stored = self._buckets.get(client_id)
        if stored is None:
            return float(self.rate.burst)
        level, at = stored
        return min(float(self.rate.burst), level + (now - at) * self.rate.per_second)
