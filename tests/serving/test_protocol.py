"""The limited httptools protocol driven in-process (a recording transport, a real loop): exact
boundaries of the head limits, the deadline and idle timers, and which connection the cap closes.
The same behaviours against real processes: `tests/e2e/test_server_limits.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from tokengate.serving import ServerLimits
from tokengate.serving.protocol import SLICE, LimitedHttpToolsProtocol, protocol_class

LIMITS = ServerLimits(max_header_bytes=4096, max_headers=10, header_timeout=5, max_connections=3)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class Recorder(asyncio.Transport):
    """A transport that keeps what is written and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = self.aborted = self.eof = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for the protocol's timers and tasks."""
    loop = asyncio.new_event_loop()
    yield loop
    pending = asyncio.all_tasks(loop)  # answers of requests the test left unserved
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@pytest.fixture
def make(loop: asyncio.AbstractEventLoop) -> Any:
    """Open connections of one server (one protocol class, one server state)."""
    config = uvicorn.Config(_app, log_level="warning", timeout_keep_alive=2)
    config.load()
    cls, state = protocol_class(LIMITS), ServerState()

    def connect() -> tuple[LimitedHttpToolsProtocol, Recorder]:
        protocol = cls(config=config, server_state=state, app_state={}, _loop=loop)
        transport = Recorder()
        protocol.connection_made(transport)
        return protocol, transport

    return connect


def _status(transport: Recorder) -> int | None:
    head = bytes(transport.written)
    return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else None


def _request(fields: int = 0, value: bytes = b"") -> bytes:
    extra = b"".join(b"x-%d: %s\r\n" % (i, value) for i in range(fields))
    return b"GET / HTTP/1.1\r\nhost: a\r\n" + extra + b"\r\n"


def _served(loop: asyncio.AbstractEventLoop, transport: Recorder) -> int | None:
    loop.run_until_complete(asyncio.sleep(0.01))  # let the ASGI task answer
    return _status(transport)


def test_a_head_at_the_byte_limit_is_served(make: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Fields and target adding up to the limit exactly: served."""
    protocol, transport = make()
    base = len(b"host: a\r\n") + len(b"x-0: \r\n") + 1  # "host" + one field + target "/"
    protocol.data_received(_request(1, b"v" * (LIMITS.max_header_bytes - base)))
    assert _served(loop, transport) == 204


def test_one_byte_past_the_limit_is_431(make: Any) -> None:
    """One byte more: 431 with Connection: close, the sending side shut."""
    protocol, transport = make()
    base = len(b"host: a\r\n") + len(b"x-0: \r\n") + 1
    protocol.data_received(_request(1, b"v" * (LIMITS.max_header_bytes - base + 1)))
    assert _status(transport) == 431
    assert b"connection: close" in transport.written
    assert transport.eof


def test_the_field_count_limit_is_exact(make: Any, loop: asyncio.AbstractEventLoop) -> None:
    """`max_headers` fields (Host included) are served; one more is 431."""
    protocol, transport = make()
    protocol.data_received(_request(LIMITS.max_headers - 1))
    assert _served(loop, transport) == 204
    protocol, transport = make()
    protocol.data_received(_request(LIMITS.max_headers))
    assert _status(transport) == 431


def test_a_head_arriving_in_pieces_is_cut_past_the_limit(make: Any) -> None:
    """A header value sent a slice at a time is refused once the bytes read pass the limit
    (plus one slice), before it ends: memory stays bounded."""
    protocol, transport = make()
    protocol.data_received(b"GET / HTTP/1.1\r\nx-big: ")
    sent = 0
    while not transport.written and sent < 10 * LIMITS.max_header_bytes:
        protocol.data_received(b"v" * 1024)
        sent += 1024
    assert _status(transport) == 431
    assert sent <= LIMITS.max_header_bytes + SLICE + 1024


def test_a_large_read_is_parsed_in_slices(make: Any) -> None:
    """One read of a megabyte of header: refused after a few slices, the rest never parsed."""
    protocol, transport = make()
    protocol.data_received(b"GET / HTTP/1.1\r\nx-big: " + b"v" * 1024 * 1024)
    assert _status(transport) == 431
    protocol.data_received(b"\r\n\r\n")  # what still comes is dropped
    assert transport.written.count(b"HTTP/1.1") == 1


def test_an_unfinished_head_gets_408_at_the_deadline(
    make: Any, loop: asyncio.AbstractEventLoop
) -> None:
    """A head that spans reads arms the deadline; at it, 408 and close."""
    protocol, transport = make()
    protocol.data_received(b"GET / HTTP/1.1\r\nx-slow: a")
    assert protocol._head.timer is not None
    protocol._head.timer._run()  # the deadline passes
    assert _status(transport) == 408


def test_a_head_in_one_read_arms_no_timer(make: Any, loop: asyncio.AbstractEventLoop) -> None:
    """The common case pays for no deadline timer."""
    protocol, transport = make()
    protocol.data_received(_request())
    assert protocol._head.timer is None
    assert _served(loop, transport) == 204


def test_the_cap_closes_the_longest_waiting_connection(make: Any) -> None:
    """Past `max_connections`, the oldest connection waiting for a head is closed, not one
    being served."""
    busy, busy_transport = make()
    busy.data_received(_request())  # headers complete: being served
    _idle, idle_transport = make()
    _newer, newer_transport = make()
    _newest, newest_transport = make()  # the fourth: one too many
    assert idle_transport.aborted
    assert not busy_transport.aborted
    assert not newer_transport.aborted
    assert not newest_transport.aborted


def test_the_cap_closes_the_newcomer_when_all_are_busy(make: Any) -> None:
    """Every connection busy: the new one is the one closed."""
    for _ in range(LIMITS.connection_cap):
        protocol, _ = make()
        protocol.data_received(_request())
    _, transport = make()
    assert transport.aborted


def test_bytes_that_begin_no_request_leave_the_idle_timer_armed(make: Any) -> None:
    """Empty lines between requests (RFC 9112 §2.2) do not keep an idle connection open."""
    protocol, _ = make()
    protocol.data_received(b"\r\n")
    assert protocol.timeout_keep_alive_task is not None
