"""Secret hygiene checks: every byte a run left behind, searched for the secrets it used."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit


def database_dump(database_url: str) -> bytes:
    """Every byte the database holds: the SQLite files, or a full pg_dump."""
    if database_url.startswith("sqlite:"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    db = urlsplit(database_url).path.lstrip("/")
    return subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", db],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def assert_nowhere(secrets: Iterable[str], places: dict[str, bytes]) -> None:
    """No secret, and no 20-character piece of one, in any place (name → its bytes)."""
    for value in secrets:
        pieces = {value.encode(), value[5:25].encode()}
        for place, blob in places.items():
            for piece in pieces:
                assert piece not in blob, f"a secret (or part of one) leaked into the {place}"
