"""The key-encryption key (KEK) sealing the signing keys in the store (RFC 9701 responses).

Where it comes from, first match wins:

1. `--key-encryption-key-file PATH` (32 bytes, base64url or hex);
2. the environment variable `TOKENGATE_KEY_ENCRYPTION_KEY` (same form);
3. a SQLite file database: `<database>.kek` beside it, created 0600 on first use (so a fresh
   `tokengate serve` signs out of the box; a copy of the database alone cannot sign);
4. `memory://` (and SQLite `:memory:`): a random key for this process;
5. PostgreSQL: none. Replicas must agree on one key, which tokengate cannot invent for them,
   so the server runs without signing (it says so) and `keys rotate` refuses.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import click

from tokengate.core.key_sealing import new_kek, parse_kek
from tokengate.storage.factory import sqlite_path

KEK_ENV = "TOKENGATE_KEY_ENCRYPTION_KEY"

kek_option = click.option(
    "--key-encryption-key-file",
    "kek_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"The key sealing the signing keys in the database (else env {KEK_ENV}; SQLite: a"
    " .kek file beside the database, made on first use).",
)


def resolve_kek(database: str, path: Path | None) -> bytes | None:
    """The KEK for `database` (see the module docstring); None where none can be had."""
    if path is not None:
        return _parsed(path.read_text(encoding="utf-8"), "--key-encryption-key-file")
    given = os.environ.get(KEK_ENV)
    if given:
        return _parsed(given, KEK_ENV)
    file = sqlite_path(database) if database.startswith("sqlite:") else None
    if database in ("memory://", "memory:") or file in ("", ":memory:"):
        return parse_kek(new_kek())
    return None if file is None else _beside_database(Path(file + ".kek"))


def _beside_database(beside: Path) -> bytes | None:
    if not beside.parent.is_dir():  # no database can be there either: the store says so
        return None
    try:
        return _parsed(_beside(beside), str(beside))
    except OSError as exc:
        raise click.ClickException(f"key-encryption key {beside}: {exc.strerror}") from None


def _parsed(text: str, where: str) -> bytes:
    try:
        return parse_kek(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=where) from None


def _beside(path: Path) -> str:
    """The KEK file's text, creating it (0600, exclusively: racing starts agree) if missing."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_kek() + "\n")
            out.flush()
            os.fsync(out.fileno())
    text = path.read_text(encoding="ascii")
    for _ in range(20):  # another process created it and is writing it: a moment more
        if text.strip():
            break
        time.sleep(0.05)
        text = path.read_text(encoding="ascii")
    return text
