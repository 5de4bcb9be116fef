"""One write per response: a response's head is held until its body is written (RFC 9112 §2.1).

uvicorn writes a response's head (status line and fields) and its body with two
`transport.write` calls, so uvloop makes two `write(2)` system calls and the client reads two
segments: on loopback each costs about as much as parsing a small request. `HeldHead` stands
between a response cycle and the connection's transport: the head is kept back and goes out
with the body that follows it, in one write. When no body follows in the same stretch of the
event loop (a streamed response whose first chunk is not ready, a `HEAD` answer), the head goes
out on the loop's next round of callbacks, so nothing waits longer than that.

Order is kept: anything written while a head is held is written after it, and closing the
connection writes the held head first. The protocol's own answers (a refused head, a malformed
request) call `release` before writing to the transport.
"""

from __future__ import annotations

import asyncio


class HeldHead:
    """The transport a response cycle writes to; holds each response's head for its body."""

    __slots__ = ("_held", "_loop", "expect_head", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.expect_head = False  # set when a request's head is parsed: its answer's comes next

    def write(self, data: bytes) -> None:
        """The first write after `expect_head` is held; the next one carries it along."""
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held + data)
        elif self.expect_head:
            self.expect_head = False
            self._held = data
            self._loop.call_soon(self._release_late)
        else:
            self.transport.write(data)

    def release(self) -> None:
        """Write a held head now (no-op when none is held)."""
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held)

    def _release_late(self) -> None:
        # Nothing came after the head in its own stretch of the loop; a connection closed
        # meanwhile (the peer left) gets nothing more, as uvicorn writes nothing once it has.
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def is_closing(self) -> bool:
        """As the transport's."""
        return self.transport.is_closing()

    def close(self) -> None:
        """Write a held head, then close the transport."""
        self.release()
        self.transport.close()
