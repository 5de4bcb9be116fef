"""`tokengate clients ...`: manage confidential clients."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from tokengate.cli.common import database_option, run_with_store
from tokengate.core import credentials
from tokengate.core.models import Client
from tokengate.core.scopes import check_resource, format_scope, is_valid_scope_token
from tokengate.storage import Store


@click.group()
def clients() -> None:
    """Create, inspect and retire OAuth clients."""


def _scopes(value: str) -> frozenset[str]:
    scopes = frozenset(value.split())
    bad = [s for s in scopes if not is_valid_scope_token(s)]
    if bad:
        raise click.BadParameter(f"invalid scope token(s): {bad}", param_hint="--scope")
    return scopes


def _audiences(values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(check_resource(v) for v in values))
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint="--audience") from exc


def client_view(client: Client) -> dict[str, Any]:
    """A client as shown to operators: never the secret hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scope": format_scope(client.scopes),
        "audiences": list(client.audiences),
        "introspect": client.can_introspect,
        "token_ttl": client.token_ttl,
        "disabled": client.disabled,
        "created_at": client.created_at,
        "secret_rotated_at": client.secret_rotated_at,
    }


def _print_credentials(client_id: str, secret: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
    else:
        click.echo(f"client_id:     {client_id}")
        click.echo(f"client_secret: {secret}")
        click.echo("Store the secret now: it is shown once and kept only as a hash.", err=True)


@clients.command("create")
@click.argument("name")
@click.option("--scope", default="", help='Allowed scopes, space-separated ("read write").')
@click.option("--audience", multiple=True, help="Allowed audience (RFC 8707 resource URI).")
@click.option("--introspect", is_flag=True, help="May call the introspection endpoint.")
@click.option("--token-ttl", default=3600, show_default=True, type=click.IntRange(1, 31_536_000))
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create(
    name: str,
    scope: str,
    audience: tuple[str, ...],
    introspect: bool,
    token_ttl: int,
    database: str,
    as_json: bool,
) -> None:
    """Create a confidential client and print its id and secret (once)."""
    secret = credentials.new_client_secret()
    now = int(time.time())
    client = Client(
        client_id=credentials.new_client_id(),
        name=name,
        secret_hash=credentials.hash_value(secret),
        scopes=_scopes(scope),
        audiences=_audiences(audience),
        can_introspect=introspect,
        token_ttl=token_ttl,
        created_at=now,
        secret_rotated_at=now,
    )

    async def add(store: Store) -> None:
        await store.add_client(client)

    run_with_store(database, add)
    _print_credentials(client.client_id, secret, as_json)


@clients.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True)
def list_clients(database: str, as_json: bool) -> None:
    """List clients."""

    async def fetch(store: Store) -> list[Client]:
        return await store.list_clients()

    rows = run_with_store(database, fetch)
    if as_json:
        click.echo(json.dumps([client_view(c) for c in rows]))
        return
    for c in rows:
        flags = ",".join(
            f for f, on in (("introspect", c.can_introspect), ("disabled", c.disabled)) if on
        )
        click.echo(f"{c.client_id}\t{c.name}\t{format_scope(c.scopes)}\t{flags}")


def _require(found: bool, client_id: str) -> None:
    if not found:
        raise click.ClickException(f"no client {client_id}")


@clients.command("show")
@click.argument("client_id")
@database_option
def show(client_id: str, database: str) -> None:
    """Show one client as JSON (without secret material)."""

    async def fetch(store: Store) -> Client | None:
        return await store.get_client(client_id)

    client = run_with_store(database, fetch)
    _require(client is not None, client_id)
    assert client is not None
    click.echo(json.dumps(client_view(client), indent=2))


@clients.command("rotate-secret")
@click.argument("client_id")
@database_option
@click.option("--json", "as_json", is_flag=True)
def rotate_secret(client_id: str, database: str, as_json: bool) -> None:
    """Issue a new secret; the old one stops working at once. Issued tokens stay valid."""
    secret = credentials.new_client_secret()

    async def rotate(store: Store) -> bool:
        return await store.set_client_secret(
            client_id, credentials.hash_value(secret), int(time.time())
        )

    _require(run_with_store(database, rotate), client_id)
    _print_credentials(client_id, secret, as_json)


@clients.command("disable")
@click.argument("client_id")
@database_option
def disable(client_id: str, database: str) -> None:
    """Disable a client and revoke every token it holds."""

    async def act(store: Store) -> bool:
        return await store.disable_client(client_id, int(time.time()))

    _require(run_with_store(database, act), client_id)
    click.echo(f"disabled {client_id}; its tokens are revoked")


@clients.command("delete")
@click.argument("client_id")
@database_option
def delete(client_id: str, database: str) -> None:
    """Delete a client and its tokens."""

    async def act(store: Store) -> bool:
        return await store.delete_client(client_id, int(time.time()))

    _require(run_with_store(database, act), client_id)
    click.echo(f"deleted {client_id}")
