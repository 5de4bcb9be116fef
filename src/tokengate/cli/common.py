"""Shared CLI plumbing: the --database option and running a coroutine against a store."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from tokengate.storage import Store, open_store
from tokengate.storage.factory import DEFAULT_DATABASE_URL
from tokengate.storage.sqlite import SQLiteSettings

T = TypeVar("T")
DATABASE_ENV = "TOKENGATE_DATABASE_URL"

database_option = click.option(
    "--database",
    "database",
    envvar=DATABASE_ENV,
    default=DEFAULT_DATABASE_URL,
    show_default=True,
    help=f"sqlite:///path, postgresql://user@host:port/db or memory:// (env {DATABASE_ENV}).",
)


def run_with_store(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store named by `url`, run `action`, close the store."""

    async def main() -> T:
        store = store_for(url)
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


def store_for(url: str, *, sqlite: SQLiteSettings | None = None) -> Store:
    """The (unopened) store `--database` names; a usage error names a missing driver's extra."""
    try:
        return open_store(url, sqlite=sqlite)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--database") from exc
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"this database needs the {exc.name!r} package: pip install 'tokengate[postgres]'"
        ) from None


def read_secret_argument(value: str) -> str:
    """`-` reads the value from standard input, keeping it out of the process list."""
    if value == "-":
        return sys.stdin.readline().strip()
    return value


def env_flag(name: str) -> bool:
    """True when an environment variable is set to a truthy value."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
