"""`tokengate clients ...`: manage confidential clients, on the database or a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tokengate.cli.target import Target, target_options
from tokengate.core.client_assertion import METHOD as PRIVATE_KEY_JWT
from tokengate.core.errors import InvalidClientMetadata, OAuthError
from tokengate.core.registration import (
    AUTH_METHODS,
    ClientMetadata,
    check_audiences,
    check_keys,
    check_scope,
)
from tokengate.management.operations import Document, Operations
from tokengate.management.service import MAX_GRACE


@click.group()
def clients() -> None:
    """Create, inspect and retire OAuth clients."""


def _scopes(value: str) -> frozenset[str]:
    try:
        return check_scope(" ".join(value.split()))
    except InvalidClientMetadata as exc:
        raise click.BadParameter(exc.description, param_hint="--scope") from None


def _audiences(values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return check_audiences(list(values))
    except InvalidClientMetadata as exc:
        raise click.BadParameter(exc.description, param_hint="--audience") from None


def _keys(jwks: Path | None, jwks_uri: str | None) -> tuple[str, str | None, str | None]:
    """(auth method, JWKS text, JWKS URI) from --jwks FILE / --jwks-uri URL."""
    if jwks is None and jwks_uri is None:
        return AUTH_METHODS[0], None, None
    try:
        document = json.loads(jwks.read_text()) if jwks is not None else None
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read a JSON JWKS: {exc}", param_hint="--jwks") from None
    try:
        return PRIVATE_KEY_JWT, *check_keys(PRIVATE_KEY_JWT, document, jwks_uri)
    except InvalidClientMetadata as exc:
        raise click.BadParameter(exc.description, param_hint="--jwks/--jwks-uri") from None


def _print_credentials(document: Document, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(document))
        return
    click.echo(f"client_id:     {document['client_id']}")
    if "client_secret" in document:
        click.echo(f"client_secret: {document['client_secret']}")
        click.echo("Store the secret now: it is shown once and kept only as a hash.", err=True)


def _require(found: Any, client_id: str) -> None:
    if not found:
        raise click.ClickException(f"no client {client_id}")


@clients.command("create")
@click.argument("name")
@click.option("--scope", default="", help='Allowed scopes, space-separated ("read write").')
@click.option("--audience", multiple=True, help="Allowed audience (RFC 8707 resource URI).")
@click.option("--introspect", is_flag=True, help="May call the introspection endpoint.")
@click.option("--token-ttl", default=3600, show_default=True, type=click.IntRange(1, 31_536_000))
@click.option(
    "--jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A public JWKS file: the client authenticates with private_key_jwt, no secret.",
)
@click.option("--jwks-uri", help="Where the client's public JWKS is (https): private_key_jwt.")
@click.option(
    "--dpop-bound",
    is_flag=True,
    help="Every token request must carry a DPoP proof (RFC 9449 dpop_bound_access_tokens).",
)
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create(
    name: str,
    scope: str,
    audience: tuple[str, ...],
    introspect: bool,
    token_ttl: int,
    jwks: Path | None,
    jwks_uri: str | None,
    dpop_bound: bool,
    target: Target,
    as_json: bool,
) -> None:
    """Create a confidential client and print its id and secret (once); with --jwks or
    --jwks-uri it authenticates with signed assertions (RFC 7523) and has no secret."""
    if jwks is not None and jwks_uri is not None:
        raise click.UsageError("use one of --jwks and --jwks-uri")
    method, key_set, key_uri = _keys(jwks, jwks_uri)
    metadata = ClientMetadata(
        name, _scopes(scope), _audiences(audience), introspect, token_ttl, method, key_set, key_uri,
        dpop_bound,
    )  # fmt: skip

    async def act(ops: Operations) -> Document:
        return await ops.create_client(metadata)

    _print_credentials(target.run(act), as_json)


@clients.command("list")
@target_options
@click.option("--json", "as_json", is_flag=True)
def list_clients(target: Target, as_json: bool) -> None:
    """List clients, with the tokens each was issued in the last hour."""

    async def act(ops: Operations) -> list[Document]:
        return await ops.list_clients()

    rows = target.run(act)
    if as_json:
        click.echo(json.dumps(rows))
        return
    for c in rows:
        flags = ",".join(f for f in ("introspect", "disabled") if c[f])
        recent = c.get("tokens_issued_last_hour", 0)
        click.echo(f"{c['client_id']}\t{c['name']}\t{c['scope']}\t{flags}\t{recent} tokens/h")


@clients.command("show")
@click.argument("client_id")
@target_options
def show(client_id: str, target: Target) -> None:
    """Show one client as JSON, with the state of its secrets (never the secrets)."""

    async def act(ops: Operations) -> Document | None:
        return await ops.show_client(client_id)

    client = target.run(act)
    _require(client is not None, client_id)
    click.echo(json.dumps(client, indent=2))


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--grace",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_GRACE),
    help="Seconds the old secret keeps working (0: it stops at once).",
)
@target_options
@click.option("--json", "as_json", is_flag=True)
def rotate_secret(client_id: str, grace: int, target: Target, as_json: bool) -> None:
    """Issue a new secret; the old one works --grace more seconds. Issued tokens stay valid."""

    async def act(ops: Operations) -> Document | None:
        try:
            return await ops.rotate_secret(client_id, grace)
        except OAuthError as exc:
            raise click.ClickException(exc.description) from None

    rotated = target.run(act)
    _require(rotated is not None, client_id)
    assert rotated is not None
    _print_credentials(rotated, as_json)


@clients.command("disable")
@click.argument("client_id")
@target_options
def disable(client_id: str, target: Target) -> None:
    """Disable a client and revoke every token it holds."""

    async def act(ops: Operations) -> bool:
        return await ops.disable_client(client_id)

    _require(target.run(act), client_id)
    click.echo(f"disabled {client_id}; its tokens are revoked")


@clients.command("delete")
@click.argument("client_id")
@target_options
def delete(client_id: str, target: Target) -> None:
    """Delete a client and its tokens."""

    async def act(ops: Operations) -> bool:
        return await ops.delete_client(client_id)

    _require(target.run(act), client_id)
    click.echo(f"deleted {client_id}")
