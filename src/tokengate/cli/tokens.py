"""`tokengate tokens ...`: revoke a token, purge expired ones."""

from __future__ import annotations

import time

import click

from tokengate.cli.common import database_option, read_secret_argument, run_with_store
from tokengate.core.credentials import hash_value
from tokengate.storage import Store


@click.group()
def tokens() -> None:
    """Operate on issued access tokens."""


@tokens.command("revoke")
@click.argument("token")
@database_option
def revoke(token: str, database: str) -> None:
    """Revoke TOKEN (use - to read it from standard input)."""
    token_hash = hash_value(read_secret_argument(token))

    async def act(store: Store) -> bool:
        return await store.revoke_token(token_hash, int(time.time()))

    if run_with_store(database, act):
        click.echo("revoked")
    else:
        raise click.ClickException(
            "no such active token (unknown, expired and purged, or already revoked)"
        )


@tokens.command("purge-expired")
@database_option
def purge_expired(database: str) -> None:
    """Delete expired tokens from storage."""

    async def act(store: Store) -> int:
        return await store.purge_expired(int(time.time()))

    click.echo(f"purged {run_with_store(database, act)} expired tokens")
