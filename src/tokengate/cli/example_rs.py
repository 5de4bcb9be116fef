"""`tokengate example-resource-server`: run the example resource server under uvicorn.

Every option can also come from `TOKENGATE_RS_<NAME>` (e.g. `TOKENGATE_RS_CLIENT_SECRET`, the
better place for a secret than the command line, which other users can read).
"""

from __future__ import annotations

import click
import uvicorn

from tokengate.cli.options import ValidatorOptions, env_option, logging_options, validator_options
from tokengate.cli.serving import ServingOptions, serving_options
from tokengate.cli.validation import build_validator
from tokengate.logs import configure_logging
from tokengate.resource.example import create_example_app
from tokengate.serving import uvicorn_config

PREFIX = "TOKENGATE_RS"


@click.command("example-resource-server")
@env_option(PREFIX, "--host", default="127.0.0.1", show_default=True)
@env_option(PREFIX, "--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@validator_options(PREFIX)
@logging_options(PREFIX)
@env_option(
    PREFIX,
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Allowed CORS origin; repeat the option (or space-separate in the env variable).",
)
@serving_options(PREFIX)
def example_resource_server(
    host: str,
    port: int,
    validation: ValidatorOptions,
    log_level: str,
    log_format: str,
    access_log: bool,
    cors_origins: tuple[str, ...],
    serving: ServingOptions,
) -> None:
    """Serve /auth-api/** behind token introspection, /public/** open."""
    limits, tls = serving.limits(), serving.tls()
    validator = build_validator(validation)
    configure_logging(log_level, log_format)
    app = create_example_app(
        validator, token_header=validation.token_header, cors_origins=cors_origins
    )
    config = uvicorn_config(
        app,
        host=host,
        port=port,
        limits=limits,
        tls=tls,
        log_level=log_level,
        access_log=access_log,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    example_resource_server()
