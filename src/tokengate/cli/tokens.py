"""`tokengate tokens ...`: revoke a token, purge expired ones."""

from __future__ import annotations

import time

import click

from tokengate.cli.common import database_option, read_secret_argument, run_with_store
from tokengate.cli.target import Target, target_options
from tokengate.management.operations import Operations
from tokengate.storage.base import PurgeInProgress, PurgePace, Store


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


_DEFAULT = PurgePace()


@tokens.command("purge-expired")
@database_option
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=_DEFAULT.batch,
    show_default=True,
    help="Rows deleted per transaction.",
)
@click.option(
    "--pause",
    type=click.FloatRange(0, 60),
    default=_DEFAULT.pause,
    show_default=True,
    help="Seconds of rest after each batch, at least.",
)
@click.option(
    "--idle-ratio",
    type=click.FloatRange(0, 100),
    default=_DEFAULT.idle_ratio,
    show_default=True,
    help="Rest at least this many times as long as the batch took (busy at most 1/(1+R)).",
)
def purge_expired(database: str, batch: int, pause: float, idle_ratio: float) -> None:
    """Delete expired tokens from storage (in paced batches; one purge at a time)."""
    try:
        pace = PurgePace(batch=batch, pause=pause, idle_ratio=idle_ratio)
    except ValueError as exc:  # NaN passes click's ranges
        raise click.UsageError(str(exc)) from None

    async def act(store: Store) -> int:
        return await store.purge_expired(int(time.time()), pace=pace)

    try:
        purged = run_with_store(database, act)
    except PurgeInProgress as exc:
        raise click.ClickException(f"{exc}; nothing done") from None
    click.echo(f"purged {purged} expired tokens")
