"""The `tokengate` command: a thin layer over the same service functions the server uses."""

from __future__ import annotations

import contextlib
import importlib

import click

from tokengate.cli.clients import clients
from tokengate.cli.serve import serve
from tokengate.cli.tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tokengate")
def main() -> None:
    """tokengate: opaque OAuth 2.0 tokens with introspection, revocation and caching."""


main.add_command(serve)
main.add_command(clients)
main.add_command(tokens)

# Commands that live in feature packages register here once their module exists.
for _module, _name in (
    ("tokengate.cli.example_rs", "example_resource_server"),
    ("tokengate.cli.gateway", "gateway"),
    ("tokengate.cli.demo", "demo"),
):
    with contextlib.suppress(ModuleNotFoundError):
        main.add_command(getattr(importlib.import_module(_module), _name))
