"""`tokengate gateway`: run the reverse proxy (bypass or introspect mode) under uvicorn.

Every option can also come from `TOKENGATE_GW_<NAME>` (e.g. `TOKENGATE_GW_CLIENT_SECRET`, the
better place for a secret than the command line). Repeatable options take several values from
the environment separated by `;` (patterns and scope rules may contain spaces).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click
import uvicorn

from tokengate.gateway import (
    DEFAULT_CLAIM_HEADERS,
    DEFAULT_METRICS_PATH,
    ClaimHeader,
    GatewaySettings,
    UpstreamPool,
    UpstreamTimeouts,
    build_policy,
    create_gateway,
    parse_listen,
    parse_scope_rule,
)
from tokengate.logs import configure_logging
from tokengate.resource.factory import ValidatorSettings, create_subscriber, create_validator
from tokengate.resource.resolver import DEFAULT_TOKEN_HEADER
from tokengate.resource.responses import DEFAULT_REALM

FC = TypeVar("FC", bound=Callable[..., Any])


class _Listed(click.ParamType[str, Any]):
    """Text; several values in one environment variable are separated by `;`."""

    name = "text"
    envvar_list_splitter = ";"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value).strip()


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"TOKENGATE_GW_{name}", "show_envvar": True}


def _seconds(name: str, default: float, text: str) -> Callable[[FC], FC]:
    return click.option(
        f"--{name}-timeout",
        default=default,
        show_default=True,
        type=click.FloatRange(min=0.001),
        help=text,
        **_env(f"{name.upper()}_TIMEOUT"),
    )


@click.command("gateway")
@click.option("--upstream", required=True, **_env("UPSTREAM"), help="Base URL to forward to.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, **_env("LISTEN"))
@click.option(
    "--mode",
    type=click.Choice(["bypass", "introspect"]),
    default="bypass",
    show_default=True,
    **_env("MODE"),
    help="bypass: forward tokens untouched; introspect: validate them here.",
)
@click.option(
    "--protect",
    multiple=True,
    type=_Listed(),
    **_env("PROTECT"),
    help="introspect: path glob needing a token (repeatable; default /**).",
)
@click.option(
    "--require-scope",
    "scope_rules",
    multiple=True,
    type=_Listed(),
    **_env("REQUIRE_SCOPE"),
    help='introspect: "[METHODS] PATTERN=SCOPES", e.g. "POST /auth-api/items=write".',
)
@click.option(
    "--claim-header",
    "claim_headers",
    multiple=True,
    type=_Listed(),
    **_env("CLAIM_HEADER"),
    help="introspect: HEADER=CLAIM sent upstream (repeatable; replaces the defaults "
    + ", ".join(f"{h.name}={h.claim}" for h in DEFAULT_CLAIM_HEADERS)
    + ").",
)
@click.option(
    "--token-header", default=DEFAULT_TOKEN_HEADER, show_default=True, **_env("TOKEN_HEADER")
)
@click.option("--realm", default=DEFAULT_REALM, show_default=True, **_env("REALM"))
@click.option("--issuer", **_env("ISSUER"), help="introspect: discover via RFC 8414.")
@click.option("--introspection-url", **_env("INTROSPECTION_URL"), help="introspect: no discovery.")
@click.option("--client-id", **_env("CLIENT_ID"), help="introspect: the gateway's client id.")
@click.option("--client-secret", **_env("CLIENT_SECRET"), help="introspect: prefer the env var.")
@click.option("--audience", **_env("AUDIENCE"), help="introspect: accept only this audience.")
@click.option(
    "--cache-max-ttl",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0),
    **_env("CACHE_MAX_TTL"),
    help="introspect: seconds an answer may be reused (never past the token's exp).",
)
@click.option(
    "--revocation-events/--no-revocation-events",
    default=True,
    show_default=True,
    **_env("REVOCATION_EVENTS"),
    help="introspect: follow the authorization server's revocation events (evict at once).",
)
@click.option(
    "--outage-cache-ttl",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    **_env("OUTAGE_CACHE_TTL"),
    help="introspect: seconds answers may be reused while revocation events are not received.",
)
@click.option("--preserve-host", is_flag=True, **_env("PRESERVE_HOST"), help="Forward Host as is.")
@_seconds("connect", 5.0, "Seconds to connect upstream (then 504).")
@_seconds("read", 30.0, "Seconds to wait for response headers, and between body chunks.")
@_seconds("write", 30.0, "Seconds to wait while sending the request body upstream.")
@_seconds("pool", 5.0, "Seconds to wait for a free upstream connection.")
@click.option(
    "--max-connections",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    **_env("MAX_CONNECTIONS"),
)
@click.option(
    "--metrics-path",
    default=DEFAULT_METRICS_PATH,
    show_default=True,
    **_env("METRICS_PATH"),
    help='Prometheus endpoint, under the reserved /_tokengate/ prefix ("" disables).',
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    **_env("LOG_LEVEL"),
)
@click.option("--access-log", is_flag=True, **_env("ACCESS_LOG"), help="Log every request.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    **_env("LOG_FORMAT"),
    help="json: one object per line.",
)
def gateway(
    upstream: str,
    listen: str,
    mode: str,
    protect: tuple[str, ...],
    scope_rules: tuple[str, ...],
    claim_headers: tuple[str, ...],
    token_header: str,
    realm: str,
    issuer: str | None,
    introspection_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    audience: str | None,
    cache_max_ttl: float,
    revocation_events: bool,
    outage_cache_ttl: float,
    preserve_host: bool,
    connect_timeout: float,
    read_timeout: float,
    write_timeout: float,
    pool_timeout: float,
    max_connections: int,
    metrics_path: str,
    log_level: str,
    access_log: bool,
    log_format: str,
) -> None:
    """Reverse-proxy to --upstream, passing tokens through (bypass) or validating them."""
    configure_logging(log_level, log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every URL at INFO
    try:
        host, port = parse_listen(listen)
        settings = GatewaySettings(
            upstream=upstream,
            mode="introspect" if mode == "introspect" else "bypass",
            timeouts=UpstreamTimeouts(connect_timeout, read_timeout, write_timeout, pool_timeout),
            pool=UpstreamPool(max_connections=max_connections, max_keepalive=max_connections),
            preserve_host=preserve_host,
            policy=build_policy(protect, [parse_scope_rule(rule) for rule in scope_rules]),
            token_header=token_header,
            claim_headers=tuple(ClaimHeader.parse(h) for h in claim_headers)
            or DEFAULT_CLAIM_HEADERS,
            realm=realm,
            metrics_path=metrics_path or None,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    validator, background = None, []
    if settings.mode == "introspect":
        validator_settings = _validator_settings(
            issuer, introspection_url, client_id, client_secret, audience, cache_max_ttl
        )
        try:
            validator = create_validator(validator_settings)
            if revocation_events:
                outage = outage_cache_ttl
                background.append(
                    create_subscriber(validator, validator_settings, outage_ttl=outage)
                )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    app = create_gateway(settings, validator=validator, background=background)
    uvicorn.run(
        app,
        host=host,
        port=port,
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        log_config=None,  # our handler (text or JSON) for uvicorn's loggers too
        proxy_headers=False,  # the client address is the peer's: it goes into X-Forwarded-For
        server_header=False,  # the upstream's Server and Date pass through instead
        date_header=False,
        timeout_graceful_shutdown=5,
    )


def _validator_settings(
    issuer: str | None,
    introspection_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    audience: str | None,
    cache_max_ttl: float,
) -> ValidatorSettings:
    if (issuer is None) == (introspection_url is None):
        raise click.UsageError(
            "introspect mode: give exactly one of --issuer or --introspection-url"
        )
    if not client_id or not client_secret:
        raise click.UsageError("introspect mode: give --client-id and --client-secret")
    return ValidatorSettings(
        client_id=client_id,
        client_secret=client_secret,
        issuer=issuer,
        introspection_url=introspection_url,
        audience=audience,
        max_ttl=cache_max_ttl,
    )
