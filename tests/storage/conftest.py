"""Backends for the storage conformance suite, each over a database of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres import fresh_database
from tokengate.storage.base import Store
from tokengate.storage.memory import MemoryStore
from tokengate.storage.postgres import PostgresStore
from tokengate.storage.sqlite import SQLiteStore

MakeStore = Callable[[], Store]

_POSTGRES = pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)
_SQLITE = pytest.param("sqlite", id="sqlite")
_MEMORY = pytest.param("memory", id="memory")


def _factory(name: str, tmp_path: Path) -> Iterator[MakeStore]:
    if name == "memory":
        yield MemoryStore
    elif name == "sqlite":
        path = str(tmp_path / "tokengate.db")
        yield lambda: SQLiteStore(path)
    else:
        with fresh_database() as url:
            yield lambda: PostgresStore(url)


@pytest.fixture(params=[_MEMORY, _SQLITE, _POSTGRES])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Builds unopened stores over one fresh database, for every backend."""
    yield from _factory(request.param, tmp_path)


@pytest.fixture(params=[_SQLITE, _POSTGRES])
def make_durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Like `make_store`, for the backends whose data outlives the store object."""
    yield from _factory(request.param, tmp_path)


@pytest.fixture
async def store(make_store: MakeStore) -> AsyncIterator[Store]:
    """An opened store over a fresh database; closed after the test."""
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()
