"""Which async HTTP client should a resource server introspect with? (issue: resource runtime)

One `tokengate serve` (SQLite), one token, one client each: sequential RFC 7662 introspection
calls over a kept-alive connection, interleaved A B C A B C so drift hits every client alike.
Prints each client's median latency, its ratio to aiohttp (the runtime's transport) and its CPU
per call, and two yardsticks (never clients to ship): the floor, a bare asyncio stream writing a
prepared request and reading the answer (no parsing beyond Content-Length), and the same on an
asyncio protocol with httptools parsing the answer, the least a client on a real parser costs. What a client adds over the
floor is what a resource server pays on each cache miss.

aiohttp and httpx are always installed; httpcore, curl_cffi, rnet and pyreqwest are measured
when present (`pip install ...` into the venv; they are not dependencies).

    .venv/bin/python bench/http_clients.py [--calls 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from _harness import authorization_server, basic, create_client, fetch_token

from tokengate.core.wire import INTROSPECT_PATH

Call = Callable[[], Awaitable[bytes]]
Maker = Callable[[str, dict[str, str], bytes], Awaitable[Call]]


async def floor(url: str, headers: dict[str, str], body: bytes) -> Call:
    """A prepared request on one asyncio stream: the cost of the server plus loopback."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}"
    request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def call() -> bytes:
        writer.write(request)
        answer = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in answer.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await reader.readexactly(length)

    return call


async def httptools_protocol(url: str, headers: dict[str, str], body: bytes) -> Call:
    """A request written whole on an asyncio protocol, its answer parsed by httptools (llhttp,
    C): the least a client on a real HTTP parser pays (no pool, timeouts or checks)."""
    import httptools  # noqa: PLC0415 (measured only if installed)

    class Answers(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.body: list[bytes] = []
            self.answer: asyncio.Future[bytes] | None = None

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            assert self.answer is not None
            self.answer.set_result(b"".join(self.body))
            self.body.clear()

    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(Answers, parts.hostname, parts.port)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}"

    async def call() -> bytes:
        protocol.answer = loop.create_future()
        transport.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return await protocol.answer

    return call


async def aiohttp_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """aiohttp as `PooledTransport` configures it."""
    import aiohttp  # noqa: PLC0415 (measured only if installed)

    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )

    async def call() -> bytes:
        async with session.post(url, data=body, headers=headers) as response:
            return await response.read()

    return call


async def httpx_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """httpx's AsyncClient (the runtime's client before aiohttp)."""
    import httpx  # noqa: PLC0415 (measured only if installed)

    client = httpx.AsyncClient()

    async def call() -> bytes:
        return (await client.post(url, content=body, headers=headers)).content

    return call


async def httpcore_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """httpcore's connection pool, without httpx on top."""
    import httpcore  # noqa: PLC0415 (measured only if installed)

    pool = httpcore.AsyncConnectionPool()
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    raw.append((b"Content-Length", str(len(body)).encode()))

    async def call() -> bytes:
        response = await pool.request("POST", url, headers=raw, content=body)
        return bytes(response.content)

    return call


async def curl_cffi_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """libcurl through curl_cffi's AsyncSession."""
    from curl_cffi.requests import AsyncSession  # noqa: PLC0415 (measured only if installed)

    session = AsyncSession()

    async def call() -> bytes:
        return bytes((await session.post(url, data=body, headers=headers)).content)

    return call


async def rnet_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """rnet (Rust, hyper)."""
    import rnet  # noqa: PLC0415 (measured only if installed)

    client = rnet.Client()

    async def call() -> bytes:
        response = await client.post(url, body=body, headers=headers)
        return bytes(await response.bytes())

    return call


async def pyreqwest_client(url: str, headers: dict[str, str], body: bytes) -> Call:
    """pyreqwest (Rust, reqwest)."""
    from pyreqwest.client import ClientBuilder  # noqa: PLC0415 (measured only if installed)

    client = await ClientBuilder().build().__aenter__()

    async def call() -> bytes:
        response = await client.post(url).headers(headers).body_bytes(body).build().send()
        return bytes(await response.bytes())

    return call


CLIENTS: dict[str, tuple[str, Maker]] = {
    "floor": ("asyncio", floor),
    "httptools": ("httptools", httptools_protocol),
    "aiohttp": ("aiohttp", aiohttp_client),
    "httpx": ("httpx", httpx_client),
    "httpcore": ("httpcore", httpcore_client),
    "curl_cffi": ("curl_cffi", curl_cffi_client),
    "rnet": ("rnet", rnet_client),
    "pyreqwest": ("pyreqwest", pyreqwest_client),
}


async def measure(url: str, headers: dict[str, str], body: bytes, calls: int) -> None:
    present = {n: m for n, (module, m) in CLIENTS.items() if importlib.util.find_spec(module)}
    for name in CLIENTS.keys() - present.keys():
        print(f"{name}: not installed, skipped")
    clients = {name: await make(url, headers, body) for name, make in present.items()}
    # Sessions are left to process exit: this is a one-shot measurement.
    for name, call in clients.items():
        assert b'"active":true' in (await call()).replace(b" ", b""), name
    samples: dict[str, list[float]] = {name: [] for name in clients}
    cpu = dict.fromkeys(clients, 0.0)  # this thread's CPU: the client's work and its syscalls
    for _ in range(calls):
        for name, call in clients.items():
            started, used = time.perf_counter(), time.thread_time()
            await call()
            samples[name].append(time.perf_counter() - started)
            cpu[name] += time.thread_time() - used
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in medians.items():
        added = value - medians["floor"]
        print(f"{name:10s} median {value * 1000:.3f} ms, {added * 1000:+.3f} ms over the floor, "
              f"{value / medians['aiohttp']:.2f}x aiohttp; CPU {cpu[name] / calls * 1e6:6.1f} µs"
              " per call")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1500)
    args = parser.parse_args()
    db = f"sqlite:///{Path(tempfile.mkdtemp(prefix='tg-clients-')) / 'c.db'}"
    client = create_client(db, "svc", scope="read")
    rs = create_client(db, "rs", introspect=True)
    with authorization_server(db) as auth:
        token = fetch_token(auth.url, client)
        headers = {
            **basic(rs),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        body = f"token={token}".encode()
        asyncio.run(measure(auth.url + INTROSPECT_PATH, headers, body, args.calls))


if __name__ == "__main__":
    main()
