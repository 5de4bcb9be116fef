"""`tokengate apply FILE`: reconcile the clients to a TOML file of `[[client]]` tables.

    [[client]]
    client_id = "billing"            # stable, chosen by the operator
    name = "Billing service"         # default: the client_id
    scope = "invoices:read"          # space-separated
    audiences = ["https://api.example"]
    introspect = false
    token_ttl = 600
    dpop_bound_access_tokens = false # RFC 9449 §5.2: token requests must carry a DPoP proof
    secret_env = "BILLING_SECRET"    # or secret_file = "/run/secrets/billing"

Secrets come from the environment or a file, never the TOML itself, and must be high-entropy
(`check_secret`). Unknown keys are refused. A second run changes nothing and says so;
`--dry-run` prints the plan only; `--prune` disables clients the file does not name.
Concurrent applies are safe: a create that loses a race to another apply is re-planned
against what that apply stored.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import click

from tokengate.cli.common import database_option, store_for
from tokengate.core.credentials import hash_value
from tokengate.core.errors import InvalidClientMetadata
from tokengate.core.registration import (
    DPOP_BOUND,
    ClientMetadata,
    check_audiences,
    check_name,
    check_scope,
    check_ttl,
)
from tokengate.management.reconcile import Change, Declared, Kind, changes_for, plan
from tokengate.management.service import Management
from tokengate.storage.base import Store

ACTOR = "cli:apply"
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 160
MAX_SECRET_LENGTH = 512
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_KEYS = {"client_id", "name", "scope", "audiences", "introspect", "token_ttl", "secret_env",
         "secret_file", DPOP_BOUND}  # fmt: skip
_CLASSES = ((re.compile(r"[a-z]"), 26), (re.compile(r"[A-Z]"), 26), (re.compile(r"[0-9]"), 10),
            (re.compile(r"[^A-Za-z0-9]"), 33))  # fmt: skip


def check_secret(secret: str, where: str) -> str:
    """Refuse a secret a person could guess: at least 32 characters drawn from enough symbols
    for 160 bits at random (RFC 6749 §10.10), not a repeated pattern, at most 512."""
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise click.ClickException(f"{where}: the secret must be 32 to 512 characters")
    alphabet = sum(size for pattern, size in _CLASSES if pattern.search(secret))
    # a secret that repeats itself carries only its period's worth of choices
    bits = _period(secret) * math.log2(alphabet) if alphabet else 0.0
    if bits < MIN_SECRET_BITS or len(set(secret)) < 12:
        raise click.ClickException(f"{where}: the secret is not high-entropy enough")
    return secret


def _period(text: str) -> int:
    """The length of the shortest prefix that `text` repeats (KMP failure function)."""
    fail = [0] * len(text)
    for i in range(1, len(text)):
        k = fail[i - 1]
        while k and text[i] != text[k]:
            k = fail[k - 1]
        fail[i] = k + (text[i] == text[k])
    return len(text) - fail[-1] if text else 0


def load(path: Path) -> list[Declared]:
    """Read and check the file; every problem names its `[[client]]`."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    if set(document) - {"client"} or not isinstance(document.get("client", []), list):
        raise click.ClickException(f"{path}: only [[client]] tables are allowed")
    declared = [_declared(table, f"{path} [[client]] #{i + 1}")
                for i, table in enumerate(document.get("client", []))]  # fmt: skip
    ids = [d.client_id for d in declared]
    if len(set(ids)) != len(ids):
        raise click.ClickException(f"{path}: a client_id appears twice")
    return declared


def _declared(table: Any, where: str) -> Declared:
    if not isinstance(table, dict):
        raise click.ClickException(f"{where}: not a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise click.ClickException(f"{where}: unknown keys {sorted(unknown)}")
    client_id = table.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise click.ClickException(f"{where}: client_id must be 1-128 of A-Z a-z 0-9 . _ : -")
    where = f"{where} ({client_id})"
    try:
        metadata = ClientMetadata(
            name=check_name(table.get("name", client_id)),
            scopes=check_scope(table.get("scope", "")),
            audiences=check_audiences(table.get("audiences", [])),
            can_introspect=_flag(table, "introspect", where),
            token_ttl=check_ttl(table.get("token_ttl", 3600)),
            dpop_bound=_flag(table, DPOP_BOUND, where),
        )
    except InvalidClientMetadata as exc:
        raise click.ClickException(f"{where}: {exc.description}") from None
    return Declared(client_id, metadata, hash_value(_secret(table, where)))


def _flag(table: dict[str, Any], name: str, where: str) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):
        raise click.ClickException(f"{where}: {name} must be true or false")
    return value


def _secret(table: dict[str, Any], where: str) -> str:
    env, file = table.get("secret_env"), table.get("secret_file")
    if (env is None) == (file is None):
        raise click.ClickException(f"{where}: give exactly one of secret_env or secret_file")
    if env is not None:
        value = os.environ.get(str(env))
        if value is None:
            raise click.ClickException(f"{where}: environment variable {env} is not set")
    else:
        try:
            value = Path(str(file)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{where}: cannot read secret_file: {exc}") from None
    return check_secret(value, where)


async def execute(store: Store, changes: list[Change]) -> list[Change]:
    """Carry the plan out, client by client, each against its state at that moment; returns
    the changes made (a create that lost a race to another apply becomes what is left)."""
    management = Management(store, ACTOR)
    made: list[Change] = []
    done: set[str] = set()
    for change in changes:
        if change.client_id in done:
            continue
        done.add(change.client_id)
        if change.kind is Kind.DISABLE:
            made += [change] if await management.disable(change.client_id) else []
        else:
            assert change.declared is not None
            made += await _reconcile(management, change.declared)
    return made


async def _reconcile(management: Management, want: Declared, retries: int = 1) -> list[Change]:
    steps = changes_for(want, await management.store.get_client(want.client_id))
    for step in steps:
        if step.kind is Kind.CREATE:
            try:
                await management.create_client(
                    want.metadata, client_id=want.client_id, secret_hash=want.secret_hash
                )
            except ValueError:  # another apply created it first: reconcile against that
                if retries == 0:
                    raise
                return await _reconcile(management, want, retries - 1)
        elif step.kind is Kind.UPDATE:
            current = await management.store.get_client(want.client_id)
            if current is not None:
                await management.update_client(current, want.metadata)
        else:
            await management.set_secret_hash(want.client_id, want.secret_hash)
    return steps


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the changes; make none.")
@click.option("--prune", is_flag=True, help="Disable clients the file does not name.")
@database_option
def apply(file: Path, dry_run: bool, prune: bool, database: str) -> None:
    """Reconcile clients to FILE ([[client]] tables); idempotent."""
    declared = load(file)

    async def run() -> list[Change]:
        store = store_for(database)
        await store.open()
        try:
            changes = plan(declared, await store.list_clients(), prune)
            return changes if dry_run else await execute(store, changes)
        finally:
            await store.close()

    changes = asyncio.run(run())
    if not changes:
        click.echo("no changes")
        return
    for change in changes:
        click.echo(change.describe())
    click.echo(f"{'would make' if dry_run else 'made'} {len(changes)} change(s)")
