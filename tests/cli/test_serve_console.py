"""`tokengate serve --admin-console`: off by default, on by flag or environment, and refused
(before anything listens) where its session cookie would cross a network in clear text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tokengate.cli.serve import serve


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--admin-console"], {}, id="flag"),
        pytest.param([], {"TOKENGATE_SERVE_ADMIN_CONSOLE": "1"}, id="environment"),
    ],
)
def test_console_over_clear_text_refuses_to_start(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """With the console on, a non-loopback http issuer is a usage error naming the option."""
    database = f"sqlite:///{tmp_path / 'db'}"
    result = CliRunner().invoke(
        serve, [*args, "--issuer", "http://as.example.test", "--database", database], env=env
    )
    assert result.exit_code == 2
    assert "--admin-console" in result.output
    assert "https" in result.output


def test_console_is_off_by_default() -> None:
    """The help says the console is off unless asked for."""
    result = CliRunner().invoke(serve, ["--help"])
    assert "--admin-console / --no-admin-console" in result.output
    assert "[default: no-admin-console]" in " ".join(result.output.split())
