"""One uvicorn configuration for every server tokengate ships (authorization server, example
resource server, authz, gateway): the limited httptools protocol, uvloop, optional TLS."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import uvicorn

from tokengate.serving.limits import ServerLimits
from tokengate.serving.protocol import protocol_class


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    limits: ServerLimits,
    tls: ssl.SSLContext | None = None,
    log_level: str = "info",
    access_log: bool = False,
    **options: Any,
) -> uvicorn.Config:
    """`uvicorn.Config` for `app` within `limits` (and serving TLS with `tls`); `options` are
    the command's own uvicorn settings (proxy headers, server header, ...)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",  # uvloop when installed
        http=protocol_class(limits),
        timeout_keep_alive=limits.keep_alive_timeout,
        ssl_context_factory=None if tls is None else _given(tls),
        log_level=log_level,
        access_log=access_log,
        log_config=None,  # our handler (text or JSON) for uvicorn's loggers too
        timeout_graceful_shutdown=5,
        **options,
    )


_ContextFactory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def _given(context: ssl.SSLContext) -> _ContextFactory:
    """uvicorn's context factory handing out the context the command already checked."""

    def factory(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory
