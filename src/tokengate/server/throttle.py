"""Brute-force protection for client authentication (RFC 6749 §2.3.1, RFC 9700 §4.9).

Failures are counted per (client id, source address) and per source address in fixed
windows. Once a key is over its limit, further attempts from it are refused with 429 and
`Retry-After` *before* the secret is checked, so guessing gets no faster by hammering.
The real client is not locked out: an attacker elsewhere fills only its own
(client id, address) bucket and its own address bucket, never the client's.

Memory is bounded (`Limits.max_keys` counters) and no flood can lift a lock-out before its
window ends:

- a key over its limit is *locked* and pinned until the window ends; only counters still
  under their limit are ever evicted, the least recently failed first;
- an evicted counter is not forgotten: its failures are charged to the counter of the network
  one level wider (address → /24 → /16 for IPv4, → /64 → /48 for IPv6; whatever the client
  id, limit `per_address`), and while such counters exist every check consults them: under
  pressure the limit applies per network;
- failures that find no room at all (every counter locked) or that leave the widest level
  are charged to one global counter: past `per_address` of those, every authentication is
  refused until the window ends (fail closed rather than forget).

Counters live in one process: with several worker processes each gets a share of the budget
(`Limits.shared_by`).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tokengate.core.errors import TooManyRequests

# (client id or "" for the address-only counter, level, address or network at that level)
Key = tuple[str, int, str]
# Prefix lengths per level: level 0 is the address itself; the last level is the widest.
_PREFIXES = {4: (32, 24, 16), 6: (128, 64, 48)}
_WIDEST = 2
_NOT_IP = "?"  # the network of every peer that is not an IP address (one shared counter)


@dataclass(frozen=True, slots=True)
class Limits:
    """How many failures a key may have per window, and how many counters are kept."""

    per_client_and_address: int = 10
    per_address: int = 50
    window_seconds: float = 60.0
    max_keys: int = 100_000

    def shared_by(self, workers: int) -> Limits:
        """Each of `workers` processes' share: the counters live in each process, so every
        budget is divided (rounded up), and the whole server allows at most
        `workers * ceil(limit / workers)` failures per key and window (≤ limit + workers - 1);
        a caller whose connections all reach one worker gets only that worker's share."""
        return Limits(
            per_client_and_address=-(-self.per_client_and_address // workers),
            per_address=-(-self.per_address // workers),
            window_seconds=self.window_seconds,
            max_keys=self.max_keys,
        )


def widen(where: str, level: int) -> str:
    """The network of `level` (1: /24 or /64, 2: /16 or /48) holding an address or network."""
    try:
        network = ipaddress.ip_network(where, strict=False)
    except ValueError:
        return _NOT_IP
    return str(network.supernet(new_prefix=_PREFIXES[network.version][level]))


class AuthThrottle:
    """Fixed-window failure counters keyed by (client id, address) and by address."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self._clock = clock
        self._window = float("-inf")
        self._open: OrderedDict[Key, int] = OrderedDict()  # under their limit; oldest first
        self._locked: set[Key] = set()  # over their limit: kept until the window ends
        self._overflow = 0  # failures no counter could hold (see the module docstring)
        self._pressure = False  # an eviction happened this window: wider counters exist

    def __len__(self) -> int:
        """Counters held (never more than `limits.max_keys`)."""
        return len(self._open) + len(self._locked)

    def check(self, client_id: str, address: str) -> None:
        """Raise 429 when this client id from this address, or this address, is over its limit."""
        now = self._roll()
        if self._is_locked(client_id, address):
            window_end = self._window + self.limits.window_seconds
            raise TooManyRequests(
                "too many failed authentications",
                headers={"Retry-After": str(int(window_end - now) + 1)},
            )

    def failed(self, client_id: str, address: str) -> None:
        """Count one failed authentication."""
        self._roll()
        self._add((client_id, 0, address), 1)
        self._add(("", 0, address), 1)

    def _roll(self) -> float:
        """Start a new window when the current one has ended; the clock's reading."""
        now = self._clock()
        window = now - now % self.limits.window_seconds
        if window != self._window:
            self._window = window
            self._open.clear()
            self._locked.clear()
            self._overflow = 0
            self._pressure = False
        return now

    def _is_locked(self, client_id: str, address: str) -> bool:
        if self._overflow >= self.limits.per_address:
            return True
        keys = [(client_id, 0, address), ("", 0, address)]
        if self._pressure:
            keys += [("", level, widen(address, level)) for level in range(1, _WIDEST + 1)]
        return any(key in self._locked for key in keys)

    def _limit(self, key: Key) -> int:
        return self.limits.per_client_and_address if key[0] else self.limits.per_address

    def _add(self, key: Key, failures: int) -> None:
        """Charge `failures` to `key`: locked once at its limit; overflow when no room."""
        if key in self._locked:
            return
        count = self._open.pop(key, 0) + failures
        if count == failures and not self._make_room():
            self._overflow += failures
            return
        if count >= self._limit(key):
            self._locked.add(key)
        else:
            self._open[key] = count  # re-inserted last: the most recently failed

    def _make_room(self) -> bool:
        """Evict open counters (oldest first, charged one network wider) until one fits;
        False when every counter held is locked."""
        while len(self) >= self.limits.max_keys:
            if not self._open:
                return False
            self._pressure = True
            (_, level, where), count = self._open.popitem(last=False)
            if level == _WIDEST:
                self._overflow += count
            else:  # at most one counter is added for the one just removed: this terminates
                self._add(("", level + 1, widen(where, level + 1)), count)
        return True
