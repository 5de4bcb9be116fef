"""uvicorn's httptools protocol with `ServerLimits` enforced: the C parser's speed, bounded heads.

httptools (llhttp) has no header limit of its own and uvicorn adds none: it accumulates a
header of any size and any number of headers, waits for a head forever once a byte arrived,
and keeps a connection that never sends one. `LimitedHttpToolsProtocol` adds, per connection:

- the head's size and field count (431 past `max_header_bytes` or `max_headers`): while a
  head arrives, from the bytes read since it began (past the limit plus one feed slice, 431
  at once); when it is complete, exactly (the fields and the target, counted only when the
  bytes read could exceed the limit);
- a deadline from the first byte of a head to its end (408), armed only when a head spans
  reads, so a request whose head comes in one read pays for no timer;
- the keep-alive timeout from the moment a connection opens, not only after a response;
- the connection cap: past it, the connection that has waited longest for a head is closed
  (one idle or trickling, never one being served), or the new one when every other is busy.

Cheap by construction (`bench/serving_limits.py`): per request, one parser callback is
overridden (the head's end) besides the read and the response's end, and whether a head is in
progress is read from uvicorn's own state (its request scope gets a "method" when the head is
complete) rather than tracked in more callbacks.

A response to a refused head carries `Connection: close`; the connection's sending side is
shut at once and, for `LINGER` seconds, what the client still sends is read and dropped (never
parsed) before it is closed, so that the client reads the answer instead of a reset (RFC 9112
§9.6, the lingering close nginx does too). Reads larger than `SLICE` are parsed in slices, so
one read overshoots the byte limit by `SLICE` at most.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tokengate.serving.coalesce import HeldHead
from tokengate.serving.limits import ServerLimits

SLICE = 16 * 1024
LINGER = 1.0
TOO_LARGE = "Request header fields too large."


class _Refused(Exception):
    """Raised inside a parser callback to refuse the request head with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Head:
    """Per-connection state of the head being received (one attribute on the protocol)."""

    __slots__ = ("arriving", "out", "read", "received", "refused", "timer")

    def __init__(self) -> None:
        self.arriving = False  # a head began in an earlier read and is not complete
        self.received = 0  # bytes read since it began (its first read counted whole)
        self.read = 0  # the length of the read being parsed
        self.timer: asyncio.TimerHandle | None = None  # its deadline, once it spans reads
        self.refused = False  # answered 431/408: what still comes is dropped
        self.out: HeldHead | None = None  # what response cycles write to (`coalesce`)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` within `limits`; one subclass per server (`protocol_class`)."""

    limits: ClassVar[ServerLimits]
    max_header_bytes: ClassVar[int]  # the limits' values, one attribute lookup away
    max_headers: ClassVar[int]
    cap: ClassVar[int]
    waiting: ClassVar[dict[LimitedHttpToolsProtocol, None]]  # by when they began to wait

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One attribute: uvicorn's instances hold 28, and past 30 CPython gives up the
        # shared-key instance dict that makes every attribute access of the protocol fast.
        self._head = _Head()

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head.out = HeldHead(transport, self.loop)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self.waiting[self] = None
        while len(self.connections) > self.cap and self.waiting:
            oldest = next(iter(self.waiting))
            oldest.transport.abort()
            oldest._forget()

    def shutdown(self) -> None:
        """uvicorn's graceful stop, after writing a held response head (a HEAD answer's)."""
        self._release()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def _forget(self) -> None:
        self.waiting.pop(self, None)
        self.connections.discard(self)
        self._cancel_head_timer()

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes | memoryview) -> None:
        head = self._head
        if head.refused:
            return
        self._unset_keepalive_if_required()
        if len(data) > SLICE:
            self._in_slices(data)
            return
        head.read = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._failed(exc)
            return
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        scope = self.scope
        if scope is not None and "method" not in scope:  # a head is still arriving
            head.received = head.received + len(data) if head.arriving else len(data)
            head.arriving = True
            self._head_pending()
        elif head.arriving:
            head.arriving = False
            self._cancel_head_timer()
        elif self.cycle is None or self.cycle.response_complete:
            self._idle_again()  # bytes that began no request (empty lines): still idle

    def _idle_again(self) -> None:
        if self.timeout_keep_alive_task is None and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _in_slices(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), SLICE):
            if self.transport.is_closing():
                return
            self.data_received(view[start : start + SLICE])

    def _failed(self, exc: httptools.HttpParserError) -> None:
        """A refusal raised in a callback, or a malformed request (400, as uvicorn does)."""
        if isinstance(exc, httptools.HttpParserCallbackError) and isinstance(
            exc.__context__, _Refused
        ):
            self._refuse(exc.__context__)
            return
        self._release()
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _head_pending(self) -> None:
        """A head is still arriving after a read: bound its bytes and its time."""
        head = self._head
        if head.received > self.max_header_bytes + SLICE:
            self._refuse(_Refused(431, TOO_LARGE))
        elif head.timer is None:
            head.timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._head.timer = None
        if self._head.arriving:
            self._refuse(_Refused(408, "Request head not received in time."))

    def _upgrade(self) -> None:
        self._release()
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    # -- parser callbacks ------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        head = self._head
        if len(self.headers) > self.max_headers:
            raise _Refused(431, "Too many request header fields.")
        # What was read for this head bounds its size; count exactly only past the limit.
        if (head.received if head.arriving else 0) + head.read > self.max_header_bytes:
            fields = sum(len(name) + len(value) + 4 for name, value in self.headers)
            if fields + len(self.url) > self.max_header_bytes:
                raise _Refused(431, TOO_LARGE)
        self.waiting.pop(self, None)
        earlier = self.cycle
        HttpToolsProtocol.on_headers_complete(self)  # not super(): this runs per request
        cycle = self.cycle
        if cycle is not earlier and head.out is not None:  # a new request (not an upgrade)
            cycle.transport = head.out  # type: ignore[assignment]
            head.out.expect_head = True

    def on_response_complete(self) -> None:
        HttpToolsProtocol.on_response_complete(self)
        if not self.transport.is_closing() and self.cycle.response_complete:
            self.waiting[self] = None

    # -- refusing --------------------------------------------------------------------------

    def _refuse(self, refusal: _Refused) -> None:
        """Answer `refusal.status` and close (RFC 9110 §15.5.9, RFC 6585 §5), unless an
        earlier pipelined response is still being written: then only close."""
        self._head.arriving, self._head.refused = False, True
        self._cancel_head_timer()
        self._release()
        transport = self.transport
        if transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            transport.close()
            return
        transport.write(self._refusal_bytes(refusal))
        if not transport.can_write_eof():  # TLS: close_notify follows the answer
            transport.close()
            return
        transport.write_eof()
        self.loop.call_later(LINGER, transport.close)

    def _refusal_bytes(self, refusal: _Refused) -> bytes:
        body = refusal.reason.encode("ascii")
        head = [STATUS_LINE[refusal.status]]
        defaults = self.server_state.default_headers
        head += [name + b": " + value + b"\r\n" for name, value in defaults]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body

    def _release(self) -> None:
        """Write a held response head before the protocol writes to the transport itself."""
        if self._head.out is not None:
            self._head.out.release()

    def _cancel_head_timer(self) -> None:
        if self._head.timer is not None:
            self._head.timer.cancel()
            self._head.timer = None


def protocol_class(limits: ServerLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for one server: `limits`, its connection cap, its waiting list."""

    class ServerProtocol(LimitedHttpToolsProtocol):
        pass

    ServerProtocol.limits = limits
    ServerProtocol.max_header_bytes = limits.max_header_bytes
    ServerProtocol.max_headers = limits.max_headers
    ServerProtocol.cap = limits.connection_cap
    ServerProtocol.waiting = {}
    return ServerProtocol
