"""`tokengate tokens ...`: revoke a token, purge expired ones."""

from __future__ import annotations

import time

import click

from tokengate.cli.common import database_option, read_secret_argument, run_with_store
from tokengate.cli.target import Target, target_options
from tokengate.management.operations import Operations
from tokengate.storage.base import PurgeInProgress, Store


@click.group()
def tokens() -> None:
    """Operate on issued access tokens."""


@tokens.command("revoke")
@click.argument("token")
@target_options
def revoke(token: str, target: Target) -> None:
    """Revoke TOKEN (use - to read it from standard input); audited by its digest only."""
    value = read_secret_argument(token)

    async def act(ops: Operations) -> bool:
        return await ops.revoke_token(value)

    if target.run(act):
        click.echo("revoked")
    else:
        raise click.ClickException(
            "no such active token (unknown, expired and purged, or already revoked)"
        )


@tokens.command("purge-expired")
@database_option
def purge_expired(database: str) -> None:
    """Delete expired tokens from storage (in paced batches; one purge at a time)."""

    async def act(store: Store) -> int:
        return await store.purge_expired(int(time.time()))

    try:
        purged = run_with_store(database, act)
    except PurgeInProgress as exc:
        raise click.ClickException(f"{exc}; nothing done") from None
    click.echo(f"purged {purged} expired tokens")
