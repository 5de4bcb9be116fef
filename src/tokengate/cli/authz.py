"""`tokengate authz`: run the forward-auth decision service for nginx, Traefik, Caddy and Envoy.

Every option can also come from `TOKENGATE_AUTHZ_<NAME>` (e.g. `TOKENGATE_AUTHZ_CLIENT_SECRET`);
repeatable options take several values from the environment separated by `;`.
"""

from __future__ import annotations

import click
import uvicorn

from tokengate.authz import AuthzSettings, create_authz
from tokengate.cli.options import (
    EdgeRules,
    ValidatorOptions,
    edge_rules_options,
    env_option,
    logging_options,
    validator_options,
)
from tokengate.cli.serving import ServingOptions, serving_options
from tokengate.cli.validation import build_validator
from tokengate.logs import configure_logging
from tokengate.resource.protocol.responses import DEFAULT_REALM
from tokengate.serving import uvicorn_config

PREFIX = "TOKENGATE_AUTHZ"


@click.command("authz")
@env_option(PREFIX, "--host", default="127.0.0.1", show_default=True)
@env_option(PREFIX, "--port", default=9100, show_default=True, type=click.IntRange(0, 65535))
@validator_options(PREFIX)
@edge_rules_options(PREFIX, "the original request")
@env_option(PREFIX, "--realm", default=DEFAULT_REALM, show_default=True)
@logging_options(PREFIX)
@serving_options(PREFIX)
def authz(
    host: str,
    port: int,
    validation: ValidatorOptions,
    rules: EdgeRules,
    realm: str,
    log_level: str,
    log_format: str,
    access_log: bool,
    serving: ServingOptions,
) -> None:
    """Answer /decide (nginx, Traefik, Caddy) and /envoy/** (Envoy ext_authz)."""
    settings = AuthzSettings(
        policy=rules.policy(),
        token_header=validation.token_header,
        claim_headers=rules.identity(),
        realm=realm,
    )
    limits, tls = serving.limits(), serving.tls()
    validator = build_validator(validation)
    configure_logging(log_level, log_format)
    config = uvicorn_config(
        create_authz(settings, validator),
        host=host,
        port=port,
        limits=limits,
        tls=tls,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        proxy_headers=False,  # X-Forwarded-* describe the original request, not our peer
        server_header=False,
    )
    uvicorn.Server(config).run()
