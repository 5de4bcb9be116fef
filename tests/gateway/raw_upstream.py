"""Scripted raw-TCP upstreams on loopback, for tests that need exact bytes on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawUpstream:
    """A loopback TCP server running `script` per connection, counting connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.port = 0

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection."""
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: what some tests are about
        finally:
            writer.close()


@asynccontextmanager
async def raw_upstream(script: Script) -> AsyncIterator[RawUpstream]:
    """Serve `script` on a free loopback port."""
    server = RawUpstream(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


async def head(reader: asyncio.StreamReader) -> bytes:
    """Read one request head (through the blank line)."""
    return await reader.readuntil(b"\r\n\r\n")


def sized(body: bytes, status: bytes = b"200 OK") -> bytes:
    """A complete response with a Content-Length body."""
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


def keep_answering(*answers: bytes) -> Script:
    """Answer each request head on the connection with the next of `answers`."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            try:
                await head(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)
            await writer.drain()
        await reader.read()

    return script
