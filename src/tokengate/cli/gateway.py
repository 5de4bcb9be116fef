"""`tokengate gateway`: run the reverse proxy (bypass or introspect mode) under uvicorn.

Every option can also come from `TOKENGATE_GW_<NAME>` (e.g. `TOKENGATE_GW_CLIENT_SECRET`, the
better place for a secret than the command line). Repeatable options take several values from
the environment separated by `;` (patterns and scope rules may contain spaces).
"""

from __future__ import annotations

import logging

import click
import uvicorn

from tokengate.cli.options import (
    Decorator,
    EdgeRules,
    ValidatorOptions,
    edge_rules_options,
    env_option,
    logging_options,
    validator_options,
)
from tokengate.cli.serving import ServingOptions, serving_options
from tokengate.cli.validation import build_validator
from tokengate.gateway import (
    DEFAULT_METRICS_PATH,
    GatewaySettings,
    UpstreamPool,
    UpstreamTimeouts,
    create_gateway,
    parse_listen,
)
from tokengate.logs import configure_logging
from tokengate.resource.protocol.responses import DEFAULT_REALM
from tokengate.serving import uvicorn_config

PREFIX = "TOKENGATE_GW"


def _seconds(name: str, default: float, text: str) -> Decorator:
    return env_option(
        PREFIX,
        f"--{name}-timeout",
        default=default,
        show_default=True,
        type=click.FloatRange(min=0.001),
        help=text,
    )


@click.command("gateway")
@env_option(PREFIX, "--upstream", required=True, help="Base URL to forward to.")
@env_option(PREFIX, "--listen", default="127.0.0.1:8080", show_default=True)
@env_option(
    PREFIX,
    "--mode",
    type=click.Choice(["bypass", "introspect"]),
    default="bypass",
    show_default=True,
    help="bypass: forward tokens untouched; introspect: validate them here.",
)
@edge_rules_options(PREFIX, "a request (introspect mode)")
@env_option(PREFIX, "--realm", default=DEFAULT_REALM, show_default=True)
@validator_options(PREFIX)
@env_option(PREFIX, "--preserve-host", is_flag=True, help="Forward Host as is.")
@_seconds("connect", 5.0, "Seconds to connect upstream (then 504).")
@_seconds("read", 30.0, "Seconds to wait for response headers, and between body chunks.")
@_seconds("write", 30.0, "Seconds to wait while sending the request body upstream.")
@_seconds("pool", 5.0, "Seconds to wait for a free upstream connection.")
@env_option(PREFIX, "--max-connections", default=100, show_default=True, type=click.IntRange(1))
@env_option(
    PREFIX,
    "--metrics-path",
    default=DEFAULT_METRICS_PATH,
    show_default=True,
    help='Prometheus endpoint, under the reserved /_tokengate/ prefix ("" disables).',
)
@logging_options(PREFIX)
@serving_options(PREFIX)
def gateway(
    upstream: str,
    listen: str,
    mode: str,
    rules: EdgeRules,
    realm: str,
    validation: ValidatorOptions,
    preserve_host: bool,
    connect_timeout: float,
    read_timeout: float,
    write_timeout: float,
    pool_timeout: float,
    max_connections: int,
    metrics_path: str,
    log_level: str,
    log_format: str,
    access_log: bool,
    serving: ServingOptions,
) -> None:
    """Reverse-proxy to --upstream, passing tokens through (bypass) or validating them."""
    limits, tls = serving.limits(), serving.tls()
    configure_logging(log_level, log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every upstream URL at INFO
    try:
        host, port = parse_listen(listen)
        settings = GatewaySettings(
            upstream=upstream,
            mode="introspect" if mode == "introspect" else "bypass",
            timeouts=UpstreamTimeouts(connect_timeout, read_timeout, write_timeout, pool_timeout),
            pool=UpstreamPool(max_connections=max_connections, max_keepalive=max_connections),
            preserve_host=preserve_host,
            policy=rules.policy(),
            token_header=validation.token_header,
            claim_headers=rules.identity(),
            realm=realm,
            metrics_path=metrics_path or None,
            ca_file=None if validation.tls_ca_file is None else str(validation.tls_ca_file),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    validator = build_validator(validation) if settings.mode == "introspect" else None
    try:
        app = create_gateway(settings, validator=validator)
    except ValueError as exc:  # an unusable --tls-ca-file
        raise click.BadParameter(str(exc)) from None
    config = uvicorn_config(
        app,
        host=host,
        port=port,
        limits=limits,
        tls=tls,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        proxy_headers=False,  # the client address is the peer's: it goes into X-Forwarded-For
        server_header=False,  # the upstream's Server and Date pass through instead
        date_header=False,
    )
    uvicorn.Server(config).run()
