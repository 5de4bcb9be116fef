"""Sans-I/O parser of `text/event-stream` (WHATWG HTML §9.2.6, "Interpreting an event stream").

Feed it the bytes of a response as they arrive; `feed` returns the events those bytes complete.
Lines end in CRLF, LF or CR (a CRLF split across two chunks is one line end); a leading BOM is
dropped; `:` starts a comment; `data` lines accumulate; `id` (without NUL) sets the last event
ID, committed at the next blank line even when that frame carries no data; `retry` keeps only
ASCII digits; unknown fields are ignored. Lines and data are bounded so a broken or hostile
server cannot grow memory without limit.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")
MAX_LINE = 64 * 1024
MAX_DATA = 1024 * 1024


class StreamError(ValueError):
    """The stream broke the format or the size bounds."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (`message` by default), data, and last event ID."""

    event: str
    data: str
    id: str


class SSEParser:
    """Incremental event-stream parser; one per connection."""

    def __init__(self, *, max_line: int = MAX_LINE, max_data: int = MAX_DATA) -> None:
        self.max_line = max_line
        self.max_data = max_data
        self.last_event_id = ""
        self.retry: int | None = None  # milliseconds, when the server suggested one
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume `chunk`; return the events it completed, in order."""
        events: list[ServerSentEvent] = []
        for line in self._lines(self._decoder.decode(chunk)):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _lines(self, text: str) -> list[str]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text:
            self._skip_lf = False
            text = text.removeprefix("\n")
        *lines, self._partial = _LINE_END.split(self._partial + text)
        if lines and not self._partial and text.endswith("\r"):
            self._skip_lf = True  # the LF of this CRLF may open the next chunk
        if len(self._partial) > self.max_line:
            raise StreamError("event-stream line too long")
        return lines

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)
        return None

    def _field(self, name: str, value: str) -> None:
        if name == "event":
            self._event = value
        elif name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_data:
                raise StreamError("event data too large")
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> ServerSentEvent | None:
        self.last_event_id = self._id
        event = None
        if self._data:
            event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data, self._data_size = "", [], 0
        return event
