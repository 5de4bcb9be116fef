"""`tokengate admin-tokens create | list | revoke`: mint an initial access token (RFC 7591 §3)
or, with `--admin`, a token for the whole management API (shown once, stored as a SHA-256
digest); list them by public id and state; revoke one at once."""

from __future__ import annotations

import json

import click

from tokengate.cli.target import Target, target_options
from tokengate.core.models import AdminRole
from tokengate.management.operations import Document, Operations


@click.group("admin-tokens")
def admin_tokens() -> None:
    """Credentials for client registration and the management API."""


@admin_tokens.command("create")
@click.option(
    "--ttl",
    default=86_400,
    show_default=True,
    type=click.IntRange(1, 366 * 86_400),
    help="Seconds until the token expires.",
)
@click.option("--admin", "is_admin", is_flag=True, help="Allow the whole management API.")
@click.option("--name", default="", help="What the token is for (shown in the audit log).")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create(ttl: int, is_admin: bool, name: str, target: Target, as_json: bool) -> None:
    """Create a token for POST /oauth2/register (with --admin: for the management API)."""
    role = AdminRole.ADMIN if is_admin else AdminRole.REGISTER

    async def act(ops: Operations) -> Document:
        return await ops.create_admin_token(role, ttl, name)

    made = target.run(act)
    if as_json:
        click.echo(json.dumps(made))
        return
    key = "admin_token" if is_admin else "initial_access_token"
    click.echo(f"{key}: {made[key]}")
    click.echo(f"token_id: {made['token_id']}  expires_at: {made['expires_at']}")
    click.echo("Store the token now: it is shown once and kept only as a hash.", err=True)


@admin_tokens.command("list")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def list_(target: Target, as_json: bool) -> None:
    """Every admin token: id, role, name, expiry and state (values are never kept)."""

    async def act(ops: Operations) -> list[Document]:
        return await ops.list_admin_tokens()

    for token in target.run(act):
        if as_json:
            click.echo(json.dumps(token))
            continue
        name = f"  {token['name']}" if token["name"] else ""
        click.echo(
            f"{token['token_id']}  {token['role']:<8}  {token['state']:<7}  "
            f"expires_at={token['expires_at']}{name}"
        )


@admin_tokens.command("revoke")
@click.argument("token_id")
@target_options
def revoke(token_id: str, target: Target) -> None:
    """Revoke an admin token by its id (`tgadmid_...`): refused at once on every replica."""

    async def act(ops: Operations) -> bool:
        return await ops.revoke_admin_token(token_id)

    if not target.run(act):
        raise click.ClickException(f"no admin token {token_id}, or it is already revoked")
    click.echo(f"revoked {token_id}")
