"""`tokengate admin-tokens create`: mint an initial access token (RFC 7591 §3) or, with
`--admin`, a token for the whole management API. Shown once, stored as a SHA-256 digest."""

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
