"""A tiny upstream for gateway tests: it answers with what it received (pure ASGI).

* any path: JSON with the method, raw path, query, header list, and the body's length and
  SHA-256 (the body is hashed as it streams, never held);
* `/slow?seconds=S`: waits S seconds before answering;
* `/stream?chunks=N&size=B`: streams N chunks of B bytes (`x` repeated), no Content-Length.

Run as a process: `uvicorn tests.gateway.echo_app:app --port P`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

from tokengate.resource.adapters.asgi import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the request (see the module docstring)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    query = parse_qs(scope["query_string"].decode())
    if scope["path"] == "/slow":
        await asyncio.sleep(float(query["seconds"][0]))
    if scope["path"] == "/stream":
        await _stream(send, int(query["chunks"][0]), int(query["size"][0]))
        return
    digest, length = await _hash_body(receive)
    document: dict[str, Any] = {
        "method": scope["method"],
        "raw_path": scope.get("raw_path", b"").decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_length": length,
        "body_sha256": digest,
    }
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-upstream", b"echo"),
        (b"connection", b"x-upstream-private"),
        (b"x-upstream-private", b"hop"),
        (b"keep-alive", b"timeout=5"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; Path=/"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _hash_body(receive: Receive) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        digest.update(chunk)
        length += len(chunk)
        if not message.get("more_body", False):
            break
    return digest.hexdigest(), length


async def _stream(send: Send, chunks: int, size: int) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    block = b"x" * size
    for _ in range(chunks):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
