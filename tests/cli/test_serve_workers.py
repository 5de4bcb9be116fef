"""`tokengate serve --workers`: a whole number ≥ 1 or `auto`; anything else, and a console
that would need shared sessions, refused before anything listens."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tokengate.cli.serve import serve
from tokengate.cli.serving import WorkerCount, usable_cores


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0", id="zero"),
        pytest.param("-2", id="negative"),
        pytest.param("two", id="word"),
        pytest.param("1.5", id="fraction"),
        pytest.param("", id="empty"),
        pytest.param("auto2", id="auto-with-suffix"),
    ],
)
def test_bad_worker_counts_are_usage_errors(tmp_path: Path, value: str) -> None:
    """A bad `--workers` exits 2 naming the option, on the command line and in the environment."""
    database = f"sqlite:///{tmp_path / 'db'}"
    for args, env in (
        (["--workers", value], {}),
        ([], {"TOKENGATE_SERVE_WORKERS": value or " "}),
    ):
        result = CliRunner().invoke(serve, [*args, "--database", database], env=env)
        assert result.exit_code == 2, result.output
        assert "--workers" in result.output


@pytest.mark.parametrize(
    ("value", "count"),
    [
        pytest.param("1", 1, id="one"),
        pytest.param(" 3 ", 3, id="spaces"),
        pytest.param("AUTO", usable_cores(), id="auto-any-case"),
        pytest.param(4, 4, id="an-int-default"),
    ],
)
def test_worker_counts_convert(value: object, count: int) -> None:
    """Numbers convert as themselves; `auto` is the cores this process may use."""
    assert WorkerCount().convert(value, None, None) == count


def test_auto_is_the_cpu_affinity() -> None:
    """`auto` follows the affinity mask (what `taskset` or a container allows), not the machine."""
    assert usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param("--admin-console", id="console-sessions-in-one-process"),
        pytest.param("--sqlite-exclusive", id="sqlite-file-locked-to-one-process"),
    ],
)
def test_one_process_options_are_refused_with_several_workers(tmp_path: Path, flag: str) -> None:
    """Console sessions live in one process's memory, an exclusive SQLite file is locked to one
    process: with `--workers 2` either exits 2, naming the option, before any file is made."""
    database = f"sqlite:///{tmp_path / 'db'}"
    result = CliRunner().invoke(serve, [flag, "--workers", "2", "--database", database])
    assert result.exit_code == 2
    assert flag in result.output
    assert "--workers 1" in result.output
    assert not (tmp_path / "db").exists()


def test_worker_count_rejects_bool() -> None:
    """A boolean is not a count (True is an int in Python)."""
    with pytest.raises(click.BadParameter):
        WorkerCount().convert(True, None, None)
