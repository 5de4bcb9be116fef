"""What one server process allows a client connection: head size and count, head deadline,
idle time, and how many connections it keeps open at once (RFC 9110 §15.5.20 431, §15.5.9 408).

Plain values; `protocol.py` enforces them. The connection cap defaults to what the process's
file-descriptor limit leaves after a reserve for everything else it opens (database files,
outbound connection pools, logs), so idle clients can never take the last descriptor.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

DEFAULT_MAX_HEADER_BYTES = 32 * 1024  # nginx's 4 x 8k header buffers
DEFAULT_MAX_HEADERS = 100  # Apache's LimitRequestFields
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 5  # uvicorn's; whole seconds, as uvicorn takes it
FD_RESERVE = 256  # descriptors kept for everything but client connections


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds on every client connection of one server process.

    `max_header_bytes`: the request line and header fields together (431 past it).
    `max_headers`: header fields per request (431 past it).
    `header_timeout`: seconds from a request's first byte to the end of its head (408).
    `keep_alive_timeout`: seconds a connection may sit idle, before its first request and
    between requests (then closed).
    `max_connections`: open client connections; a new one past it closes the connection
    that has waited longest for a request head, or itself when every other one is busy.
    """

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keep_alive_timeout: int = DEFAULT_KEEP_ALIVE_TIMEOUT
    max_connections: int | None = None  # None: `auto_max_connections()`

    def __post_init__(self) -> None:
        if self.max_header_bytes < 1024 or self.max_headers < 1:
            raise ValueError("max_header_bytes must be >= 1024 and max_headers >= 1")
        if self.header_timeout <= 0 or self.keep_alive_timeout <= 0:
            raise ValueError("header_timeout and keep_alive_timeout must be > 0")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")

    @property
    def connection_cap(self) -> int:
        """`max_connections`, or what the descriptor limit allows when it is not set."""
        return self.max_connections or auto_max_connections()


def auto_max_connections() -> int:
    """The soft RLIMIT_NOFILE less `FD_RESERVE` (at least half of it)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(soft - FD_RESERVE, soft // 2, 1)
