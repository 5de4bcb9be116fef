"""`tokengate keys list | rotate`: the signing keys of RFC 9701 introspection responses.

On the database (`--database`: the new key is sealed here, so this needs the servers'
key-encryption key) or through a running server (`--server URL` and an admin token: the server
seals it with its own, and the CLI never holds the KEK). Every replica reads the key set from
the database every `--key-refresh-interval` (30 s); a new key signs only after `--delay`, so
each has read it before it is used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from tokengate.cli.common import run_with_store
from tokengate.cli.key_encryption import KEK_ENV, kek_option, resolve_kek
from tokengate.cli.target import Target, target_options
from tokengate.core import key_sealing, signing_keys
from tokengate.core.audit import CLI_ACTOR
from tokengate.management import keys as service
from tokengate.management.service import MAX_GRACE
from tokengate.storage.base import Store


@click.group("keys")
def keys() -> None:
    """The server's signing keys (signed introspection responses, RFC 9701)."""


@keys.command("list")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def list_(target: Target, as_json: bool) -> None:
    """Every stored key: kid, algorithm, state and times (never a private key)."""

    async def act(store: Store) -> list[service.Document]:
        return service.key_views(await store.signing_keys(), time.time())

    for view in _remote_list(target) if target.server else run_with_store(target.database, act):
        if as_json:
            click.echo(json.dumps(view))
            continue
        click.echo(
            f"{view['kid']}  {view['alg']}  {view['state']:<9}  active_at={view['active_at']}"
            f"  retire_at={view['retire_at']}"
        )


@keys.command("rotate")
@target_options
@kek_option
@click.option(
    "--grace",
    type=click.IntRange(0, MAX_GRACE),
    default=signing_keys.DEFAULT_GRACE,
    show_default=True,
    help="Seconds the replaced keys stay published after the new key starts signing.",
)
@click.option(
    "--delay",
    type=click.IntRange(0, MAX_GRACE),
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
    target: Target, kek_file: Path | None, grace: int, delay: int, alg: str, as_json: bool
) -> None:
    """Add a signing key: published now, signing after --delay; the old ones retire later."""
    made = _remote_rotate(target, grace, delay, alg) if target.server else None
    if made is None:
        made = _local_rotate(target.database, kek_file, grace, delay, alg)
    if as_json:
        click.echo(json.dumps(made))
        return
    click.echo(f"added {made['kid']} ({made['alg']}): signs from {made['active_at']}")


def _local_rotate(
    database: str, kek_file: Path | None, grace: int, delay: int, alg: str
) -> service.Document:
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
        return run_with_store(database, act)
    except key_sealing.KeyUnusable as exc:
        raise click.ClickException(str(exc)) from None


def _remote_list(target: Target) -> list[service.Document]:
    async def act(remote: Any) -> list[service.Document]:
        listed: list[service.Document] = await remote.list_signing_keys()
        return listed

    return target.run(act)


def _remote_rotate(target: Target, grace: int, delay: int, alg: str) -> service.Document:
    async def act(remote: Any) -> service.Document:
        made: service.Document = await remote.rotate_signing_key(grace, delay, alg)
        return made

    return target.run(act)
