"""End-to-end fixtures: databases for real `tokengate serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each durable kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tokengate.db'}"
        return
    with fresh_database() as url:  # skips with the reason locally, fails under CI=true
        yield url
