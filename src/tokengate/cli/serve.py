"""`tokengate serve`: run the authorization server on uvicorn."""

from __future__ import annotations

import functools
import logging
import socket
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from tokengate.cli.common import database_option, store_for
from tokengate.cli.key_encryption import kek_option, resolve_kek
from tokengate.cli.serve_process import ServePlan, build_server, run_worker
from tokengate.cli.serving import ServingOptions, WorkerCount, serving_options
from tokengate.logs import configure_logging
from tokengate.server import Settings
from tokengate.server.console import ConsoleRefused
from tokengate.server.issuance_rate import TokenRate
from tokengate.server.throttle import Limits
from tokengate.serving.workers import Supervisor, listen_sockets
from tokengate.storage.sqlite import SQLiteSettings
from tokengate.storage.sqlite.settings import MIB

PREFIX = "TOKENGATE_SERVE"

log = logging.getLogger("tokengate.serve")
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
    " address before 429 (with --workers N, each worker allows ceil(limit / N)).",
)
@click.option(
    "--max-auth-failure-keys",
    envvar="TOKENGATE_MAX_AUTH_FAILURE_KEYS",
    type=click.IntRange(16),
    default=Limits().max_keys,
    show_default=True,
    help="Failure counters kept (the throttle's memory bound); past it, counters under their"
    " limit are merged per network, lock-outs are kept.",
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
    "--dpop-nonce/--no-dpop-nonce",
    envvar="TOKENGATE_SERVE_DPOP_NONCE",
    default=False,
    show_default=True,
    help="DPoP proofs at the token endpoint must carry a nonce of this server (RFC 9449 §8;"
    " every replica and worker shares the nonce key through the database).",
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
@click.option(
    "--workers",
    envvar="TOKENGATE_SERVE_WORKERS",
    type=WorkerCount(),
    default="1",
    show_default=True,
    help="Processes serving on the one port: a number, or auto (one per core). Caches stay"
    " coherent through the event log; see the README.",
)
@kek_option
@click.option(
    "--key-refresh-interval",
    envvar="TOKENGATE_KEY_REFRESH_INTERVAL",
    type=click.FloatRange(0.1, 300),
    default=_DEFAULTS["key_refresh_interval"],
    show_default=True,
    help="Seconds between reads of the signing keys (keep it below keys rotate --delay).",
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
    max_auth_failure_keys: int,
    max_token_rate: str | None,
    admin_console: bool,
    dpop_nonce: bool,
    sqlite_wal_limit: int,
    sqlite_exclusive: bool,
    serving: ServingOptions,
    max_event_streams: int,
    event_heartbeat: float,
    workers: int,
    kek_file: Path | None,
    key_refresh_interval: float,
) -> None:
    """Run the authorization server (token, introspection, revocation, metadata, events)."""
    serving.limits(), serving.tls()  # checked here, before anything listens
    if workers > 1 and admin_console:
        raise click.BadParameter(
            "the console keeps its sessions in one process's memory: serve it with --workers 1",
            param_hint="--admin-console",
        )
    _issuer(issuer, serving.scheme, host, port)  # refused before binding, too
    configure_logging(log_level, log_format)
    try:
        sqlite = SQLiteSettings(wal_limit=sqlite_wal_limit * MIB, exclusive=sqlite_exclusive)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sqlite-wal-limit") from None
    if workers > 1 and sqlite_exclusive:
        raise click.BadParameter(
            "an exclusive SQLite file is for one process: serve it with --workers 1",
            param_hint="--sqlite-exclusive",
        )
    # a bad URL or a missing driver is refused here, not in every worker
    store_for(database, sqlite=sqlite)
    sockets = _listen(host, port, workers) if workers > 1 else []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    per_client, per_address = max_auth_failures
    throttle = Limits(per_client, per_address, max_keys=max_auth_failure_keys)
    settings = Settings(
        issuer=_issuer(issuer, serving.scheme, host, bound),
        access_log=access_log,
        max_event_streams=max_event_streams,
        event_heartbeat=event_heartbeat,
        throttle=throttle.shared_by(workers),
        max_token_rate=_token_rate(max_token_rate),
        admin_console=admin_console,
        dpop_nonce=dpop_nonce,
        key_encryption_key=resolve_kek(database, kek_file),
        key_refresh_interval=key_refresh_interval,
    )
    plan = ServePlan(host, bound, database, sqlite, settings, serving, log_level, log_format)
    if not sockets:
        _serve_here(plan)
        return
    log.info("serving on %s://%s:%d with %d workers", serving.scheme, host, bound, workers)
    try:
        status = Supervisor(functools.partial(run_worker, plan), sockets, workers).run()
    finally:
        for sock in sockets:
            sock.close()
    if status:
        raise SystemExit(status)


def _serve_here(plan: ServePlan) -> None:
    """One process: this one."""
    try:
        server = build_server(plan, plan.settings)
    except ConsoleRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--admin-console") from None
    server.run()


def _listen(host: str, port: int, count: int) -> list[socket.socket]:
    try:
        return listen_sockets(host, port, count)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None


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
