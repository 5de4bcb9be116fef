"""`tokengate example-resource-server`: run the example resource server under uvicorn.

Every option can also come from `TOKENGATE_RS_<NAME>` (e.g. `TOKENGATE_RS_CLIENT_SECRET`, the
better place for a secret than the command line, which other users can read).
"""

from __future__ import annotations

import logging
from typing import Any

import click
import uvicorn

from tokengate.logs import configure_logging
from tokengate.resource.example import create_example_app
from tokengate.resource.factory import ValidatorSettings, create_subscriber, create_validator
from tokengate.resource.introspection import DEFAULT_TIMEOUTS, Timeouts
from tokengate.resource.resolver import DEFAULT_TOKEN_HEADER


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"TOKENGATE_RS_{name}", "show_envvar": True}


@click.command("example-resource-server")
@click.option("--host", default="127.0.0.1", show_default=True, **_env("HOST"))
@click.option("--port", default=8000, show_default=True, type=int, **_env("PORT"))
@click.option("--issuer", **_env("ISSUER"), help="Discover introspection via RFC 8414.")
@click.option("--introspection-url", **_env("INTROSPECTION_URL"), help="Skip discovery.")
@click.option("--client-id", required=True, **_env("CLIENT_ID"))
@click.option("--client-secret", required=True, **_env("CLIENT_SECRET"), show_default=False)
@click.option(
    "--token-header", default=DEFAULT_TOKEN_HEADER, show_default=True, **_env("TOKEN_HEADER")
)
@click.option(
    "--cache-max-ttl",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    **_env("CACHE_MAX_TTL"),
    help="Seconds an introspection answer may be reused (never past the token's exp).",
)
@click.option(
    "--revocation-events/--no-revocation-events",
    default=True,
    show_default=True,
    **_env("REVOCATION_EVENTS"),
    help="Follow the authorization server's revocation events (evict on revocation).",
)
@click.option(
    "--outage-cache-ttl",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    **_env("OUTAGE_CACHE_TTL"),
    help="Seconds answers may be reused while revocation events are not being received.",
)
@click.option(
    "--introspection-timeout",
    default=DEFAULT_TIMEOUTS.total,
    show_default=True,
    type=click.FloatRange(min=0.05),
    **_env("INTROSPECTION_TIMEOUT"),
    help="Seconds one introspection may take in all, retries included; then 503.",
)
@click.option(
    "--circuit-threshold",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    **_env("CIRCUIT_THRESHOLD"),
    help="Consecutive failed introspections that open the circuit (503 at once, no call).",
)
@click.option(
    "--circuit-cooldown",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    **_env("CIRCUIT_COOLDOWN"),
    help="Seconds the circuit stays open before one probe call; also the 503's Retry-After.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    **_env("ACCESS_LOG"),
    help="uvicorn's line per request (off for load tests).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    **_env("LOG_FORMAT"),
    help="json: one object per line.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    **_env("CORS_ORIGIN"),
    help="Allowed CORS origin; repeat the option (or space-separate in the env variable).",
)
def example_resource_server(
    host: str,
    port: int,
    issuer: str | None,
    introspection_url: str | None,
    client_id: str,
    client_secret: str,
    token_header: str,
    cache_max_ttl: float,
    revocation_events: bool,
    outage_cache_ttl: float,
    introspection_timeout: float,
    circuit_threshold: int,
    circuit_cooldown: float,
    access_log: bool,
    cors_origins: tuple[str, ...],
    log_format: str,
) -> None:
    """Serve /auth-api/** behind token introspection, /public/** open."""
    if (issuer is None) == (introspection_url is None):
        raise click.UsageError("give exactly one of --issuer or --introspection-url")
    settings = ValidatorSettings(
        client_id=client_id,
        client_secret=client_secret,
        issuer=issuer,
        introspection_url=introspection_url,
        max_ttl=cache_max_ttl,
        timeouts=Timeouts.within(introspection_timeout),
        failure_threshold=circuit_threshold,
        cooldown=circuit_cooldown,
    )
    try:
        validator = create_validator(settings)
        subscriber = (
            create_subscriber(validator, settings, outage_ttl=outage_cache_ttl)
            if revocation_events
            else None
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    configure_logging("info", log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per introspection
    app = create_example_app(
        validator, token_header=token_header, cors_origins=cors_origins, subscriber=subscriber
    )
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, log_config=None)


if __name__ == "__main__":
    example_resource_server()
