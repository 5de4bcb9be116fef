"""One write per response (`tokengate.serving.coalesce`), through the limited httptools protocol
with a transport that records each write: the head travels with its body, a head whose body is
late goes out on its own first, and order is kept around 100-continue, HEAD, pipelining and
refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from tokengate.serving import ServerLimits
from tokengate.serving.coalesce import HeldHead
from tokengate.serving.protocol import LimitedHttpToolsProtocol, protocol_class

LIMITS = ServerLimits(max_header_bytes=4096, max_headers=10, header_timeout=5, max_connections=8)
App = Callable[[dict[str, Any], Any, Any], Any]


class Writes(asyncio.Transport):
    """A transport that keeps every write apart, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _whole(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = (await receive()).get("body", b"") or b"ok"
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _late_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for the protocol's tasks."""
    loop = asyncio.new_event_loop()
    yield loop
    pending = asyncio.all_tasks(loop)
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def _connect(loop: asyncio.AbstractEventLoop, app: App) -> tuple[LimitedHttpToolsProtocol, Writes]:
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=2)
    config.load()
    protocol = protocol_class(LIMITS)(
        config=config, server_state=ServerState(), app_state={}, _loop=loop
    )
    transport = Writes()
    protocol.connection_made(transport)
    return protocol, transport


def _run(loop: asyncio.AbstractEventLoop, seconds: float = 0.01) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


GET = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"


def test_a_whole_response_is_one_write(loop: asyncio.AbstractEventLoop) -> None:
    """Head and body of a fixed-length answer leave in a single write."""
    protocol, transport = _connect(loop, _whole)
    protocol.data_received(GET)
    _run(loop)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\nok")


def test_a_head_whose_body_is_late_is_not_held_for_it(loop: asyncio.AbstractEventLoop) -> None:
    """A streamed answer: the head is written on its own before the first chunk is ready."""
    protocol, transport = _connect(loop, _late_body)
    protocol.data_received(GET)
    _run(loop)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    _run(loop, 0.1)
    assert b"".join(transport.writes[1:]) == b"5\r\nchunk\r\n0\r\n\r\n"


def test_a_head_answer_is_written_without_a_body(loop: asyncio.AbstractEventLoop) -> None:
    """HEAD: uvicorn writes no body, and the held head still goes out."""
    protocol, transport = _connect(loop, _whole)
    protocol.data_received(b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n")
    _run(loop)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


def test_pipelined_answers_keep_their_order(loop: asyncio.AbstractEventLoop) -> None:
    """Two requests in one read: two answers, first one first, none lost."""
    protocol, transport = _connect(loop, _whole)
    first = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nfirst"
    second = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 6\r\n\r\nsecond"
    protocol.data_received(first + second)
    _run(loop, 0.05)
    written = b"".join(transport.writes)
    assert written.count(b"HTTP/1.1 200 OK") == 2
    assert written.index(b"first") < written.index(b"second")


def test_100_continue_comes_before_the_answer(loop: asyncio.AbstractEventLoop) -> None:
    """`Expect: 100-continue`: the interim response is written before the final one."""
    protocol, transport = _connect(loop, _whole)
    protocol.data_received(
        b"POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
    )
    _run(loop)
    assert b"".join(transport.writes) == b"HTTP/1.1 100 Continue\r\n\r\n"
    protocol.data_received(b"body")
    _run(loop)
    written = b"".join(transport.writes)
    assert written.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert written.endswith(b"body")


def test_a_closing_answer_is_written_before_the_close(loop: asyncio.AbstractEventLoop) -> None:
    """HTTP/1.0 (no keep-alive): the answer is complete when the connection closes."""
    protocol, transport = _connect(loop, _whole)
    protocol.data_received(b"GET / HTTP/1.0\r\n\r\n")
    _run(loop)
    assert transport.closed
    assert b"".join(transport.writes).endswith(b"\r\n\r\nok")


def test_nothing_is_written_once_the_peer_left(loop: asyncio.AbstractEventLoop) -> None:
    """A held head whose connection closed before the loop's next round is dropped."""
    transport = Writes()
    out = HeldHead(transport, loop)
    out.expect_head = True
    out.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.closed = True  # the peer went away
    _run(loop)
    assert transport.writes == []


def test_closing_writes_the_held_head_first(loop: asyncio.AbstractEventLoop) -> None:
    """`close()` with a head held: the head, then the close."""
    transport = Writes()
    out = HeldHead(transport, loop)
    out.expect_head = True
    out.write(b"head")
    out.close()
    assert transport.writes == [b"head"]
    assert transport.closed
    _run(loop)
    assert transport.writes == [b"head"]


def test_a_graceful_stop_writes_a_held_head_first(loop: asyncio.AbstractEventLoop) -> None:
    """The server stopping right after a HEAD answer: the answer, then the close."""
    protocol, transport = _connect(loop, _whole)
    protocol.data_received(b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n")
    loop.call_soon(loop.stop)
    loop.run_forever()  # one turn of the loop: the answer runs, its head is held
    assert transport.writes == []
    protocol.shutdown()
    assert transport.closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 OK\r\n")
