"""`tokengate edge-config`: print a proxy configuration that puts `tokengate authz` in front
of an upstream (nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth, Envoy HTTP
`ext_authz`).

Every option can also come from `TOKENGATE_EDGE_<NAME>`; `--claim-header` takes several values
from the environment separated by `;`. Give it the same `--token-header` and `--claim-header`
values as `tokengate authz`: they name what the proxy passes on and what it trusts.
"""

from __future__ import annotations

import click

from tokengate.cli.options import claim_header_option, env_option
from tokengate.edge.configs import KINDS, EdgeOptions, Kind, render
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER

PREFIX = "TOKENGATE_EDGE"


@click.command("edge-config")
@click.argument("kind", type=click.Choice(KINDS))
@env_option(PREFIX, "--listen", required=True, help="HOST:PORT the proxy listens on.")
@env_option(PREFIX, "--upstream", required=True, help="http://HOST:PORT to forward to.")
@env_option(PREFIX, "--authz", required=True, help="http://HOST:PORT[/prefix] of tokengate authz.")
@env_option(PREFIX, "--token-header", default=DEFAULT_TOKEN_HEADER, show_default=True)
@claim_header_option(PREFIX, "HEADER=CLAIM, as given to tokengate authz")
def edge_config(
    kind: Kind,
    listen: str,
    upstream: str,
    authz: str,
    token_header: str,
    claim_headers: tuple[str, ...],
) -> None:
    """Print a ready nginx, Caddy, Traefik or Envoy configuration for tokengate authz."""
    try:
        options = EdgeOptions.parse(listen, upstream, authz, token_header, claim_headers)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(render(kind, options), nl=False)
