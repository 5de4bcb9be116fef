"""The sans-I/O event-stream parser (WHATWG HTML §9.2.6)."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.sse import ServerSentEvent, SSEParser, StreamError


def parse(*chunks: bytes) -> tuple[list[ServerSentEvent], SSEParser]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def one_byte_at_a_time(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


VECTORS = [
    pytest.param(
        b"data: hello\n\n", [ServerSentEvent("message", "hello", "")], id="default-type-message"
    ),
    pytest.param(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [ServerSentEvent("message", "YHOO\n+2\n10", "")],
        id="whatwg-multi-line-data",
    ),
    pytest.param(
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n\n",
        [
            ServerSentEvent("message", "first event", "1"),
            ServerSentEvent("message", "second event", ""),
            ServerSentEvent("message", " third event", ""),
        ],
        id="whatwg-comment-id-reset-one-space-stripped",
    ),
    pytest.param(
        b"data\n\ndata\ndata\n\ndata:\n",
        [ServerSentEvent("message", "", ""), ServerSentEvent("message", "\n", "")],
        id="whatwg-empty-data-and-unterminated-last-frame",
    ),
    pytest.param(
        b"event: revocation\r\nid: 42\r\ndata: {}\r\n\r\n",
        [ServerSentEvent("revocation", "{}", "42")],
        id="crlf-line-ends",
    ),
    pytest.param(
        b"event: sync\rid: 7\rdata: x\r\r", [ServerSentEvent("sync", "x", "7")], id="cr-line-ends"
    ),
    pytest.param(
        b"\xef\xbb\xbfdata: bom\n\n", [ServerSentEvent("message", "bom", "")], id="leading-bom"
    ),
    pytest.param(
        b"event: x\nfoo: bar\nid: a\x00b\ndata: y\n\n",
        [ServerSentEvent("x", "y", "")],
        id="unknown-field-ignored-id-with-nul-ignored",
    ),
    pytest.param(
        b"id: 5\n\n: keepalive\n\ndata: z\n\n",
        [ServerSentEvent("message", "z", "5")],
        id="id-without-data-persists",
    ),
    pytest.param(
        b"event: a\n\ndata: b\n\n",
        [ServerSentEvent("message", "b", "")],
        id="type-reset-after-empty-frame",
    ),
    pytest.param(
        b"data: caf\xc3\xa9 \xff\n\n",
        [ServerSentEvent("message", "caf\u00e9 \ufffd", "")],
        id="utf8-with-replacement",
    ),
]


@pytest.mark.parametrize(("stream", "expected"), VECTORS)
def test_vectors_whole(stream: bytes, expected: list[ServerSentEvent]) -> None:
    """Each vector parses to its events when fed in one piece."""
    assert parse(stream)[0] == expected


@pytest.mark.parametrize(("stream", "expected"), VECTORS)
def test_vectors_byte_by_byte(stream: bytes, expected: list[ServerSentEvent]) -> None:
    """Chunk boundaries anywhere (inside CRLF, inside UTF-8) change nothing."""
    assert parse(*one_byte_at_a_time(stream))[0] == expected


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    """A CR ending one chunk and an LF opening the next end a single line."""
    events, _ = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert events == [ServerSentEvent("message", "a\nb", "")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(b"retry: 1000\n", 1000, id="digits"),
        pytest.param(b"retry: 10s\n", None, id="not-digits"),
        pytest.param(b"retry: \xd9\xa3\n", None, id="non-ascii-digit"),
        pytest.param(b"retry:\n", None, id="empty"),
    ],
)
def test_retry_field(line: bytes, expected: int | None) -> None:
    """`retry` is kept only when it is ASCII digits."""
    assert parse(line)[1].retry == expected


def test_last_event_id_is_committed_at_the_blank_line() -> None:
    """The parser's last event ID changes when a frame ends, not when `id:` is read."""
    parser = SSEParser()
    parser.feed(b"id: 9\n")
    assert parser.last_event_id == ""
    parser.feed(b"\n")
    assert parser.last_event_id == "9"


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"x" * 100, id="line-too-long"),
        pytest.param(b"data: 0123456789\n" * 10, id="data-too-large"),
    ],
)
def test_bounds(stream: bytes) -> None:
    """An endless line or frame is an error, not unbounded memory."""
    parser = SSEParser(max_line=64, max_data=64)
    with pytest.raises(StreamError):
        parser.feed(stream)
