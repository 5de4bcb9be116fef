"""The baseline: a bare ASGI hello-world, served by the same uvicorn settings as tokengate."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with a fixed 200."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def main() -> None:
    """`python bench/hello_asgi.py PORT`: the same app under tokengate's own serving setup
    (`tokengate.serving.uvicorn_config`, default `ServerLimits`), as every tokengate server."""
    import sys  # noqa: PLC0415 - only when run as a script

    import uvicorn  # noqa: PLC0415

    from tokengate.serving import ServerLimits, uvicorn_config  # noqa: PLC0415

    config = uvicorn_config(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        limits=ServerLimits(),
        log_level="warning",
        proxy_headers=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
