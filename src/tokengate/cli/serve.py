"""`tokengate serve`: run the authorization server on uvicorn."""

from __future__ import annotations

import logging

import click
import uvicorn

from tokengate.cli.common import database_option
from tokengate.server import Settings, create_app
from tokengate.storage import open_store


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=click.IntRange(0, 65535))
@database_option
@click.option("--issuer", envvar="TOKENGATE_ISSUER", help="Issuer URL (default http://HOST:PORT).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(host: str, port: int, database: str, issuer: str | None, log_level: str) -> None:
    """Run the authorization server (token, introspection, revocation, metadata)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        store = open_store(database)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--database") from exc
    settings = Settings(issuer=issuer or f"http://{host}:{port}")
    app = create_app(settings, store)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # direct exposure by default; put a proxy-aware LB config in front
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
