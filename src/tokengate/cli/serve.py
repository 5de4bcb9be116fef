"""`tokengate serve`: run the authorization server on uvicorn."""

from __future__ import annotations

import faulthandler
from dataclasses import fields
from types import FrameType
from typing import Any

import click
import uvicorn

from tokengate.cli.common import database_option, store_for
from tokengate.cli.serving import ServingOptions, serving_options
from tokengate.logs import configure_logging
from tokengate.server import AuthorizationServer, Settings, create_app
from tokengate.server.console import ConsoleRefused
from tokengate.server.issuance_rate import TokenRate
from tokengate.server.throttle import Limits
from tokengate.serving import uvicorn_config
from tokengate.storage.sqlite import SQLiteSettings
from tokengate.storage.sqlite.settings import MIB

PREFIX = "TOKENGATE_SERVE"

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}
_SQLITE = SQLiteSettings()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=click.IntRange(0, 65535))
@database_option
@click.option(
    "--issuer",
    envvar="TOKENGATE_ISSUER",
    help="Issuer URL (default http://HOST:PORT, https:// with --tls-cert).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    envvar="TOKENGATE_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one object per line, with request ids.",
)
@click.option(
    "--access-log/--no-access-log",
    envvar="TOKENGATE_ACCESS_LOG",
    default=False,
    show_default=True,
    help="Log every request (method, path, status, latency, request id).",
)
@click.option(
    "--max-auth-failures",
    envvar="TOKENGATE_MAX_AUTH_FAILURES",
    type=(click.IntRange(1), click.IntRange(1)),
    default=(10, 50),
    show_default=True,
    help="Failed client authentications allowed per minute per (client id, address) and per"
    " address before 429.",
)
@click.option(
    "--max-token-rate",
    envvar="TOKENGATE_MAX_TOKEN_RATE",
    metavar="PER_SECOND[:BURST]",
    default=None,
    help="Tokens each client may be issued per second in this process (BURST at once; default"
    " one second's worth); past it 429 temporarily_unavailable + Retry-After. Default: no limit.",
)
@click.option(
    "--admin-console/--no-admin-console",
    envvar="TOKENGATE_SERVE_ADMIN_CONSOLE",
    default=False,
    show_default=True,
    help="Serve the browser admin console under /admin (needs an https or loopback issuer).",
)
@click.option(
    "--sqlite-wal-limit",
    envvar="TOKENGATE_SQLITE_WAL_LIMIT",
    type=click.IntRange(0),
    default=_SQLITE.wal_limit // MIB,
    show_default=True,
    metavar="MIB",
    help="SQLite: the -wal file stays below this; past half of it writes pause for a TRUNCATE"
    " checkpoint. 0: unbounded (for comparison only).",
)
@click.option(
    "--sqlite-exclusive/--no-sqlite-exclusive",
    envvar="TOKENGATE_SQLITE_EXCLUSIVE",
    default=_SQLITE.exclusive,
    show_default=True,
    help="SQLite: lock the file for this one process and keep the WAL index in memory (no"
    " shared, memory-mapped -shm); other processes, the CLI included, cannot open it meanwhile.",
)
@serving_options(PREFIX)
@click.option(
    "--max-event-streams",
    envvar="TOKENGATE_MAX_EVENT_STREAMS",
    type=click.IntRange(0),
    default=_DEFAULTS["max_event_streams"],
    show_default=True,
    help="Revocation event streams this process holds at most; beyond: 503 + Retry-After.",
)
@click.option(
    "--event-heartbeat",
    envvar="TOKENGATE_EVENT_HEARTBEAT",
    type=click.FloatRange(0.1, 60),
    default=_DEFAULTS["event_heartbeat"],
    show_default=True,
    help="Seconds between heartbeats on a quiet event stream (keep subscribers'"
    " --heartbeat-timeout above twice this).",
)
def serve(
    host: str,
    port: int,
    database: str,
    issuer: str | None,
    log_level: str,
    log_format: str,
    access_log: bool,
    max_auth_failures: tuple[int, int],
    max_token_rate: str | None,
    admin_console: bool,
    sqlite_wal_limit: int,
    sqlite_exclusive: bool,
    serving: ServingOptions,
    max_event_streams: int,
    event_heartbeat: float,
) -> None:
    """Run the authorization server (token, introspection, revocation, metadata, events)."""
    limits, tls = serving.limits(), serving.tls()
    configure_logging(log_level, log_format)
    try:
        sqlite = SQLiteSettings(wal_limit=sqlite_wal_limit * MIB, exclusive=sqlite_exclusive)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sqlite-wal-limit") from None
    store = store_for(database, sqlite=sqlite)
    per_client, per_address = max_auth_failures
    settings = Settings(
        issuer=_issuer(issuer, serving.scheme, host, port),
        access_log=access_log,
        max_event_streams=max_event_streams,
        event_heartbeat=event_heartbeat,
        throttle=Limits(per_client_and_address=per_client, per_address=per_address),
        max_token_rate=_token_rate(max_token_rate),
        admin_console=admin_console,
    )
    try:
        app = create_app(settings, store)
    except ConsoleRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--admin-console") from None
    config = uvicorn_config(
        app,
        host=host,
        port=port,
        limits=limits,
        tls=tls,
        log_level=log_level,
        lifespan="on",
        proxy_headers=False,  # direct exposure by default; put a proxy-aware LB config in front
    )
    # A fatal signal is logged with the Python stack instead of killing silently: SIGBUS is
    # what a shared-mode SQLite `-shm` truncated or frozen under this process raises.
    faulthandler.enable()
    _Server(config, app).run()


def _token_rate(text: str | None) -> TokenRate | None:
    if text is None:
        return None
    try:
        return TokenRate.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-token-rate") from None


def _issuer(given: str | None, scheme: str, host: str, port: int) -> str:
    """The issuer identifier (RFC 8414 §2): given, or this server's own URL. A server that
    terminates TLS itself refuses an http:// issuer: every URL in its metadata would be wrong."""
    if given is None:
        return f"{scheme}://{host}:{port}"
    if scheme == "https" and not given.startswith("https://"):
        raise click.BadParameter("must be https:// when --tls-cert is given", param_hint="--issuer")
    return given


class _Server(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT end the event streams first, so the graceful stop
    drains in milliseconds instead of waiting out the timeout for subscribers."""

    def __init__(self, config: uvicorn.Config, app: AuthorizationServer) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.begin_shutdown()
        super().handle_exit(sig, frame)
