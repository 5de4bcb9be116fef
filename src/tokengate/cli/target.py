"""Where a management command acts: the database directly (`--database`, as the CLI always
did) or a running server through its management API (`--server URL` with an admin token from
`--admin-token-file` or the environment; never a command-line argument, which `ps` shows)."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from tokengate.cli.common import DATABASE_ENV, store_for
from tokengate.core.audit import CLI_ACTOR
from tokengate.management.operations import LocalOperations, Operations
from tokengate.management.service import Management
from tokengate.storage.factory import DEFAULT_DATABASE_URL

T = TypeVar("T")
SERVER_ENV = "TOKENGATE_SERVER"
ADMIN_TOKEN_ENV = "TOKENGATE_ADMIN_TOKEN"


@dataclass(frozen=True, slots=True)
class Target:
    """A database URL, or a server URL and the admin token to present there."""

    database: str
    server: str | None
    admin_token: str | None

    def run(self, action: Callable[[Operations], Awaitable[T]]) -> T:
        """Run `action` against the database or the server, then release the connection."""
        return asyncio.run(self._run(action))

    async def _run(self, action: Callable[[Operations], Awaitable[T]]) -> T:
        if self.server is not None:
            from tokengate.cli.remote import RemoteOperations  # noqa: PLC0415 (httpx is optional)

            if not self.admin_token:
                raise click.UsageError(
                    f"--server needs an admin token: --admin-token-file or {ADMIN_TOKEN_ENV}"
                )
            async with RemoteOperations(self.server, self.admin_token) as remote:
                return await action(remote)
        store = store_for(self.database)
        await store.open()
        try:
            return await action(LocalOperations(Management(store, CLI_ACTOR)))
        finally:
            await store.close()


def _admin_token(path: Path | None) -> str | None:
    if path is not None:
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise click.BadParameter("the file is empty", param_hint="--admin-token-file")
        return value
    return os.environ.get(ADMIN_TOKEN_ENV) or None


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --database, --server and --admin-token-file; the command receives `target`."""

    @functools.wraps(command)
    def collected(
        database: str, server: str | None, admin_token_file: Path | None, **values: Any
    ) -> Any:
        return command(target=Target(database, server, _admin_token(admin_token_file)), **values)

    options = [
        click.option("--database", envvar=DATABASE_ENV, default=DEFAULT_DATABASE_URL,
                     show_default=True,
                     help=f"sqlite:///path, postgresql://... or memory:// (env {DATABASE_ENV})."),
        click.option("--server", envvar=SERVER_ENV,
                     help=f"Act through this server's management API instead (env {SERVER_ENV})."),
        click.option("--admin-token-file", type=click.Path(exists=True, dir_okay=False,
                     path_type=Path),
                     help=f"With --server: the admin token (else env {ADMIN_TOKEN_ENV})."),
    ]  # fmt: skip
    decorated: Callable[..., Any] = collected
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
