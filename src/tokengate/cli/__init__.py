"""The `tokengate` command: a thin layer over the same service functions the server uses.

Subcommands load on first use, so `tokengate --help` works on any install and a command whose
optional dependency is missing says which extra to install instead of disappearing.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from tokengate.storage.base import StorageUnavailable

# name → (module, function, the extra that brings its dependencies, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "serve": ("tokengate.cli.serve", "serve", "server", "Run the authorization server."),
    "clients": ("tokengate.cli.clients", "clients", "server", "Create and manage clients."),
    "tokens": ("tokengate.cli.tokens", "tokens", "server", "Revoke or purge tokens."),
    "admin-tokens": (
        "tokengate.cli.admin_tokens",
        "admin_tokens",
        "server",
        "Create registration (RFC 7591) and management API tokens.",
    ),
    "apply": (
        "tokengate.cli.apply",
        "apply",
        "server",
        "Reconcile clients to a TOML file of [[client]] tables.",
    ),
    "audit": ("tokengate.cli.audit", "audit", "server", "Read the audit log."),
    "keys": (
        "tokengate.cli.keys",
        "keys",
        "server",
        "List or rotate the keys signing introspection responses (RFC 9701).",
    ),
    "example-resource-server": (
        "tokengate.cli.example_rs",
        "example_resource_server",
        "server",
        "Serve /auth-api/** behind token introspection, /public/** open.",
    ),
    "gateway": (
        "tokengate.cli.gateway",
        "gateway",
        "server",
        "Reverse-proxy, passing tokens through (bypass) or validating them.",
    ),
    "authz": (
        "tokengate.cli.authz",
        "authz",
        "server",
        "The forward-auth decision service for nginx, Traefik, Caddy and Envoy.",
    ),
    "edge-config": (
        "tokengate.cli.edge_config",
        "edge_config",
        "server",
        "Print an nginx, Caddy, Traefik or Envoy configuration for tokengate authz.",
    ),
    "demo": ("tokengate.cli.demo", "demo", "server", "Run the whole flow on loopback."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when invoked (or asked for their help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a database it cannot use is one error line, not a traceback."""
        try:
            return super().invoke(ctx)
        except StorageUnavailable as exc:
            raise click.ClickException(str(exc)) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, extra, summary = entry
        try:
            command: click.Command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.startswith("tokengate"):
                raise
            return _missing(cmd_name, summary, exc.name, extra)
        return command


def _missing(name: str, summary: str, module: str, extra: str) -> click.Command:
    def fail(**_: Any) -> None:
        raise click.ClickException(
            f"`tokengate {name}` needs the {module!r} package: pip install 'tokengate[{extra}]'"
        )

    return click.Command(
        name, callback=fail, help=summary, short_help=summary, context_settings=_IGNORE_ARGS
    )


_IGNORE_ARGS = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tokengate")
def main() -> None:
    """tokengate: opaque OAuth 2.0 tokens with introspection, revocation and caching."""
