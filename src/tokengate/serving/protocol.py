"""uvicorn's httptools protocol with `ServerLimits` enforced: the C parser's speed, bounded heads.

httptools (llhttp) has no header limit of its own and uvicorn adds none: it accumulates a
header of any size and any number of headers, waits for a head forever once a byte arrived,
and keeps a connection that never sends one. `LimitedHttpToolsProtocol` adds, per connection:

- the head's size and field count, counted exactly from the parser's callbacks (the request
  target's pieces, every complete field) and, while a field is still arriving, from the bytes
  received since the head began: past `max_header_bytes` (plus one feed slice) 431;
- a deadline from the first byte of a head to its end (408), armed only when a head spans
  reads, so a request whose head comes in one read pays for no timer;
- the keep-alive timeout from the moment a connection opens, not only after a response;
- the connection cap: past it, the connection that has waited longest for a head is closed
  (one idle or trickling, never one being served), or the new one when every other is busy.

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

from tokengate.serving.limits import ServerLimits

SLICE = 16 * 1024
LINGER = 1.0


class _Refused(Exception):
    """Raised inside a parser callback to refuse the request head with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` within `limits`; one subclass per server (`protocol_class`)."""

    limits: ClassVar[ServerLimits]
    max_header_bytes: ClassVar[int]  # the limits' values, one attribute lookup away
    max_headers: ClassVar[int]
    cap: ClassVar[int]
    waiting: ClassVar[dict[LimitedHttpToolsProtocol, None]]  # by when they began to wait

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_begun = False
        self._head_size = 0  # exact: target pieces and complete fields
        self._head_received = 0  # bytes read since the head began (from its second read)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self.waiting[self] = None
        while len(self.connections) > self.cap and self.waiting:
            oldest = next(iter(self.waiting))
            oldest.transport.abort()
            oldest._forget()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def _forget(self) -> None:
        self.waiting.pop(self, None)
        self.connections.discard(self)
        self._cancel_head_timer()

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if len(data) <= SLICE:
            self._feed(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            if self.transport.is_closing():
                return
            self._feed(view[start : start + SLICE])

    def _feed(self, data: bytes | memoryview) -> None:
        began_before = self._head_begun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__)
            else:
                self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        if self._head_begun:
            self._head_pending(len(data) if began_before else 0)

    def _head_pending(self, more: int) -> None:
        """A head is still arriving after a read: bound its bytes and its time."""
        self._head_received += more
        if self._head_received > self.max_header_bytes + SLICE:
            self._refuse(_Refused(431, "Request header fields too large."))
        elif self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._head_timer = None
        if self._head_begun:
            self._refuse(_Refused(408, "Request head not received in time."))

    def _invalid(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _upgrade(self) -> None:
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._head_size = self._head_received = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.max_header_bytes:
            raise _Refused(431, "Request header fields too large.")
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > self.max_header_bytes:
            raise _Refused(431, "Request header fields too large.")
        if len(self.headers) >= self.max_headers:
            raise _Refused(431, "Too many request header fields.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_begun = False
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:
            self.waiting[self] = None

    # -- refusing --------------------------------------------------------------------------

    def _refuse(self, refusal: _Refused) -> None:
        """Answer `refusal.status` and close (RFC 9110 §15.5.9, RFC 6585 §5), unless an
        earlier pipelined response is still being written: then only close."""
        self._head_begun, self._refused = False, True
        self._cancel_head_timer()
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

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


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
