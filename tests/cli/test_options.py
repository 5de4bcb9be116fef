"""The one validator option group (`tokengate.cli.options`), shared by every command that
validates tokens: defaults from `ValidatorSettings`, one environment scheme, secrets from a file."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tokengate.cli import COMMANDS, main
from tokengate.cli.options import ValidatorOptions, validator_options
from tokengate.resource import ValidatorSettings

DEFAULTS = {f.name: f.default for f in fields(ValidatorSettings)}


def _command(prefix: str = "TOKENGATE_T") -> tuple[click.Command, list[ValidatorSettings]]:
    seen: list[ValidatorSettings] = []

    @click.command()
    @validator_options(prefix)
    def command(validation: ValidatorOptions) -> None:
        seen.append(validation.settings())

    return command, seen


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[Any, list[ValidatorSettings]]:
    command, seen = _command()
    return CliRunner().invoke(command, args, env=env or {}), seen


def test_defaults_are_the_settings_defaults() -> None:
    """Nothing but the required options given: every value is `ValidatorSettings`' default."""
    result, (settings,) = _run(["--issuer", "https://as.example", "--client-id", "rs",
                                "--client-secret", "s"])  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("max_ttl", "max_entries", "negative_ttl", "revocation_events", "outage_ttl",
                 "failure_threshold", "cooldown", "audience"):  # fmt: skip
        assert getattr(settings, name) == DEFAULTS[name], name
    assert settings.timeouts.total == DEFAULTS["timeouts"].total
    assert settings.stream_timeouts == DEFAULTS["stream_timeouts"]
    assert settings.dpop == DEFAULTS["dpop"]


def test_every_option_reads_the_command_prefix() -> None:
    """`<PREFIX>_<OPTION>`: the one environment scheme."""
    env = {
        "TOKENGATE_T_INTROSPECTION_URL": "http://127.0.0.1:9/oauth2/introspect",
        "TOKENGATE_T_CLIENT_ID": "rs",
        "TOKENGATE_T_CLIENT_SECRET": "s",
        "TOKENGATE_T_CACHE_MAX_TTL": "42",
        "TOKENGATE_T_AUDIENCE": "https://api.example",
        "TOKENGATE_T_REVOCATION_EVENTS": "false",
        "TOKENGATE_T_CIRCUIT_THRESHOLD": "9",
        "TOKENGATE_T_HEARTBEAT_TIMEOUT": "7.5",
    }
    result, (settings,) = _run([], env)
    assert result.exit_code == 0, result.output
    assert (settings.max_ttl, settings.audience, settings.revocation_events) == (
        42.0,
        "https://api.example",
        False,
    )
    assert settings.failure_threshold == 9
    assert settings.stream_timeouts.read == 7.5


def test_secret_from_a_file(tmp_path: Path) -> None:
    """`--client-secret-file` keeps the secret off the command line (trailing newline dropped)."""
    secret = tmp_path / "secret"
    secret.write_text("tgcs_from_file\n")
    result, (settings,) = _run(["--issuer", "https://as.example", "--client-id", "rs",
                                "--client-secret-file", str(secret)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert settings.client_secret == "tgcs_from_file"


def test_dpop_options() -> None:
    """`--dpop-origin` (repeatable, or `;`-separated in the environment) and `--dpop-max-age`."""
    base = ["--issuer", "https://as.example", "--client-id", "rs", "--client-secret", "s"]
    args = [*base, "--dpop-origin", "https://api.example", "--dpop-origin", "http://127.0.0.1:8000"]
    result, (settings,) = _run([*args, "--dpop-max-age", "60"])
    assert result.exit_code == 0, result.output
    assert settings.dpop.max_age == 60
    assert settings.dpop.allowed_origins == {"https://api.example", "http://127.0.0.1:8000"}
    env = {"TOKENGATE_T_DPOP_ORIGIN": "https://a.example;https://b.example"}
    result, (settings,) = _run(base, env)
    assert settings.dpop.origins == ("https://a.example", "https://b.example")
    result, seen = _run([*base, "--dpop-origin", "api.example"])
    assert result.exit_code != 0
    assert not seen
    assert "not an origin" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--client-id", "rs", "--client-secret", "s"], id="no-issuer"),
        pytest.param(
            [
                "--issuer",
                "https://a",
                "--introspection-url",
                "https://a/i",
                "--client-id",
                "rs",
                "--client-secret",
                "s",
            ],
            id="both-endpoints",
        ),
        pytest.param(["--issuer", "https://as.example", "--client-secret", "s"], id="no-id"),
        pytest.param(["--issuer", "https://as.example", "--client-id", "rs"], id="no-secret"),
        pytest.param(
            ["--issuer", "http://as.example", "--client-id", "rs", "--client-secret", "s"],
            id="plain-http-remote",
        ),
    ],
)
def test_misconfiguration_refuses_to_start(args: list[str]) -> None:
    """A usage error, never a validator that would let requests through."""

    @click.command()
    @validator_options("TOKENGATE_T")
    def build(validation: ValidatorOptions) -> None:
        from tokengate.cli.validation import build_validator  # noqa: PLC0415

        build_validator(validation)

    result = CliRunner().invoke(build, args, env={})
    assert result.exit_code != 0
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["example-resource-server", "gateway"])
def test_the_commands_share_the_group(name: str) -> None:
    """Both commands that validate tokens offer every option of the group, same names."""
    ctx = click.Context(main)
    command = main.get_command(ctx, name)
    assert command is not None
    offered = {opt for param in command.params for opt in getattr(param, "opts", [])}
    group, _ = _command()
    expected = {opt for param in group.params for opt in getattr(param, "opts", [])}
    assert expected <= offered


def test_every_command_is_listed() -> None:
    """`tokengate --help` names every command, imported or not."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
