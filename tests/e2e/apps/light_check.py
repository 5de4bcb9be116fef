"""Run inside a venv holding only `pip install tokengate` (no extras): protect an ASGI app and a
WSGI app against a real authorization server, and check no server-side dependency came along.

Arguments: ISSUER CLIENT_ID CLIENT_SECRET TOKEN. Prints one line per check; exits 0 if all hold.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
import urllib.error
import urllib.request
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from tokengate.resource import (
    Policy,
    TokenGateMiddleware,
    TokenGateWSGIMiddleware,
    ValidatorSettings,
    create_validator,
)

ABSENT = ("uvicorn", "psycopg", "redis", "httptools", "uvloop", "prometheus_client")


def settings() -> ValidatorSettings:
    issuer, client_id, secret = sys.argv[1:4]
    return ValidatorSettings(issuer=issuer, client_id=client_id, client_secret=secret)


async def asgi_status(token: str) -> int:
    """One request through `TokenGateMiddleware`, called directly (no ASGI server here)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    protected = TokenGateMiddleware(app, create_validator(settings()), policy=Policy.protect("/**"))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x",
             "headers": [(b"x-access-token", token.encode())]}  # fmt: skip
    await protected(scope, receive, send)
    await protected.validator.aclose()
    return int(sent[0]["status"])


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def wsgi_status(token: str) -> int:
    """One request through `TokenGateWSGIMiddleware` on the standard library's WSGI server."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    protected = TokenGateWSGIMiddleware(app, create_validator(settings()))
    server = make_server("127.0.0.1", 0, protected, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.server_port}/x", headers={"X-Access-Token": token}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as refused:
        status = refused.code
    server.shutdown()
    protected.close()
    return status


def main() -> int:
    token = sys.argv[4]
    checks = {
        "asgi valid token": asyncio.run(asgi_status(token)) == 200,
        "asgi garbage token": asyncio.run(asgi_status("garbage-token")) == 401,
        "wsgi valid token": wsgi_status(token) == 200,
        "wsgi garbage token": wsgi_status("garbage-token") == 401,
        "no server-side packages": all(importlib.util.find_spec(m) is None for m in ABSENT),
    }
    for name, ok in checks.items():
        print(f"{'ok' if ok else 'FAILED'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
