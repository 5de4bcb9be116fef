"""`tokens purge-expired`'s pace options: out-of-range values are refused before any store is
opened (exit 2, nothing purged); given values reach the store's purge as one `PurgePace`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner

from tokengate.cli import main
from tokengate.cli import tokens as tokens_cli
from tokengate.storage.base import PurgePace


@pytest.fixture
def purges(monkeypatch: pytest.MonkeyPatch) -> list[PurgePace]:
    """The paces `purge-expired` asked a store to purge with (no real store is opened)."""
    seen: list[PurgePace] = []

    class Store:
        async def purge_expired(self, before: int, *, pace: PurgePace) -> int:
            seen.append(pace)
            return 3

    def run_with_store(database: str, act: Any) -> Any:
        return asyncio.run(act(Store()))

    monkeypatch.setattr(tokens_cli, "run_with_store", run_with_store)
    return seen


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--batch", "0"], id="batch-zero"),
        pytest.param(["--batch", "-5"], id="batch-negative"),
        pytest.param(["--pause", "-1"], id="pause-negative"),
        pytest.param(["--pause", "nan"], id="pause-nan"),
        pytest.param(["--idle-ratio", "nan"], id="ratio-nan"),
        pytest.param(["--idle-ratio", "1000"], id="ratio-too-large"),
        pytest.param(["--idle-ratio", "x"], id="ratio-not-a-number"),
    ],
)
def test_bad_pace_is_refused_before_any_purge(purges: list[PurgePace], args: list[str]) -> None:
    """A pace the options cannot hold is a usage error: exit 2, and no purge runs."""
    result = CliRunner().invoke(main, ["tokens", "purge-expired", *args])
    assert result.exit_code == 2, result.output
    assert purges == []


def test_given_pace_reaches_the_store(purges: list[PurgePace]) -> None:
    """The three options make the one pace the purge uses; without them, the defaults."""
    runner = CliRunner()
    given = ["--batch", "100", "--pause", "0.2", "--idle-ratio", "1.5"]
    assert runner.invoke(main, ["tokens", "purge-expired", *given]).output == (
        "purged 3 expired tokens\n"
    )
    assert runner.invoke(main, ["tokens", "purge-expired"]).exit_code == 0
    assert purges == [PurgePace(batch=100, pause=0.2, idle_ratio=1.5), PurgePace()]
