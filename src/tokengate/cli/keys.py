"""`tokengate keys list | rotate`: the signing keys of RFC 9701 introspection responses.

Acts on the database directly (the new key is sealed here, so this command needs the same
key-encryption key as the servers). Every replica reads the key set from the database every
30 s; a new key signs only after `--delay`, so each has read it before it is used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tokengate.cli.common import database_option, run_with_store
from tokengate.cli.key_encryption import KEK_ENV, kek_option, resolve_kek
from tokengate.core import key_sealing, signing_keys
from tokengate.core.audit import CLI_ACTOR
from tokengate.management import keys as service
from tokengate.storage.base import Store


@click.group("keys")
def keys() -> None:
    """The server's signing keys (signed introspection responses, RFC 9701)."""


@keys.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def list_(database: str, as_json: bool) -> None:
    """Every stored key: kid, algorithm, state and times (never a private key)."""

    async def act(store: Store) -> list[service.Document]:
        return service.key_views(await store.signing_keys(), time.time())

    for view in run_with_store(database, act):
        if as_json:
            click.echo(json.dumps(view))
            continue
        click.echo(
            f"{view['kid']}  {view['alg']}  {view['state']:<9}  active_at={view['active_at']}"
            f"  retire_at={view['retire_at']}"
        )


@keys.command("rotate")
@database_option
@kek_option
@click.option(
    "--grace",
    type=click.IntRange(0, 366 * 86_400),
    default=signing_keys.DEFAULT_GRACE,
    show_default=True,
    help="Seconds the replaced keys stay published after the new key starts signing.",
)
@click.option(
    "--delay",
    type=click.IntRange(0, 366 * 86_400),
    default=signing_keys.DEFAULT_PUBLICATION_DELAY,
    show_default=True,
    help="Seconds the new key is published before it signs (longer than resource servers"
    f" cache the JWKS: {signing_keys.JWKS_MAX_AGE} s).",
)
@click.option(
    "--alg", type=click.Choice(signing_keys.ALGORITHMS), default=signing_keys.DEFAULT_ALG,
    show_default=True, help="The new key's algorithm.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def rotate(
    database: str, kek_file: Path | None, grace: int, delay: int, alg: str, as_json: bool
) -> None:
    """Add a signing key: published now, signing after --delay; the old ones retire later."""
    kek = resolve_kek(database, kek_file)
    if kek is None:
        raise click.UsageError(
            f"this database needs a key-encryption key: --key-encryption-key-file or {KEK_ENV}"
            " (the one every server replica is given)"
        )

    async def act(store: Store) -> service.Document:
        now = int(time.time())
        key = await service.rotate(store, kek, now, CLI_ACTOR, grace=grace, delay=delay, alg=alg)
        return service.key_views([key], now)[0]

    try:
        made = run_with_store(database, act)
    except key_sealing.KeyUnusable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(made))
        return
    click.echo(f"added {made['kid']} ({made['alg']}): signs from {made['active_at']}")
