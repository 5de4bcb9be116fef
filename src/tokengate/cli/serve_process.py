"""One `tokengate serve` process: the app on its uvicorn server, and, under `--workers N`, the
body of each worker process (`run_worker`, started by `tokengate.serving.workers`)."""

from __future__ import annotations

import dataclasses
import faulthandler
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import uvicorn

from tokengate.cli.common import store_for
from tokengate.cli.serving import ServingOptions
from tokengate.logs import configure_logging
from tokengate.server import AuthorizationServer, Settings, create_app
from tokengate.serving import uvicorn_config
from tokengate.serving.workers import WorkerLink
from tokengate.storage.sqlite import SQLiteSettings


@dataclass(frozen=True, slots=True)
class ServePlan:
    """What a serving process needs, already checked by the command; picklable, so that each
    worker rebuilds its own TLS context, store and app from it."""

    host: str
    port: int
    database: str
    sqlite: SQLiteSettings
    settings: Settings
    serving: ServingOptions
    log_level: str
    log_format: str


def build_server(
    plan: ServePlan, settings: Settings, on_ready: Callable[[], None] | None = None
) -> ServeServer:
    """The app on a uvicorn server configured from `plan` (may raise `ConsoleRefused`)."""
    app = create_app(settings, store_for(plan.database, sqlite=plan.sqlite))
    # A fatal signal is logged with the Python stack instead of killing silently: SIGBUS is
    # what a shared-mode SQLite `-shm` truncated or frozen under this process raises.
    faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    config = uvicorn_config(
        app,
        host=plan.host,
        port=plan.port,
        limits=plan.serving.limits(),
        tls=plan.serving.tls(),
        log_level=plan.log_level,
        lifespan="on",
        proxy_headers=False,  # direct exposure by default; put a proxy-aware LB config in front
    )
    return ServeServer(config, app, on_ready)


def run_worker(plan: ServePlan, index: int, sock: socket.socket, link: WorkerLink) -> None:
    """Worker `index`: serve on the parent's socket; worker 0 alone purges expired tokens."""
    configure_logging(plan.log_level, plan.log_format)
    settings = dataclasses.replace(plan.settings, worker=index, purger=index == 0)
    build_server(plan, settings, on_ready=link.ready).run(sockets=[sock])


class ServeServer(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT end the event streams first, so the graceful stop
    drains in milliseconds instead of waiting out the timeout for subscribers; `on_ready`
    is called once the server listens."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: AuthorizationServer,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup (lifespan, then listening); then `on_ready`."""
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin the graceful stop."""
        self._app.begin_shutdown()
        super().handle_exit(sig, frame)
