"""The server option group (`tokengate.cli.serving`), shared by every command that listens:
the same options everywhere, one environment scheme, bad TLS pairs and caps refused."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support.tls import Pki, make_pki
from tokengate.cli import main
from tokengate.cli.serving import ServingOptions, serving_options
from tokengate.serving import ServerLimits

SERVERS = ["serve", "authz", "example-resource-server", "gateway"]
# What each command needs besides the server options to get as far as checking them.
REQUIRED = {
    "serve": ["--database", "memory://"],
    "gateway": ["--upstream", "http://127.0.0.1:9"],
}
VALIDATOR = ["--introspection-url", "http://127.0.0.1:9/oauth2/introspect", "--client-id", "x",
             "--client-secret", "y"]  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA and a server certificate it signed."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _seen(args: list[str], env: dict[str, str] | None = None) -> list[ServingOptions]:
    seen: list[ServingOptions] = []

    @click.command()
    @serving_options("TOKENGATE_T")
    def command(serving: ServingOptions) -> None:
        serving.limits()
        seen.append(serving)

    result = CliRunner().invoke(command, args, env=env or {})
    assert result.exit_code == 0, result.output
    return seen


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_command_offers_the_group(name: str) -> None:
    """The four commands that listen take every server option, same names."""
    command = main.get_command(click.Context(main), name)
    assert command is not None
    offered = {opt for param in command.params for opt in getattr(param, "opts", [])}
    expected = {
        *("--max-header-bytes", "--max-headers", "--header-timeout", "--keep-alive-timeout"),
        *("--max-client-connections", "--tls-cert", "--tls-key"),
    }
    assert expected <= offered


def test_the_defaults_are_the_limits_defaults() -> None:
    """No option given: `ServerLimits()`, no TLS."""
    (options,) = _seen([])
    assert options.limits() == ServerLimits()
    assert options.tls() is None
    assert options.scheme == "http"


def test_every_option_reads_the_command_prefix() -> None:
    """`<PREFIX>_<OPTION>` for the server options too."""
    env = {
        "TOKENGATE_T_MAX_HEADER_BYTES": "8192",
        "TOKENGATE_T_MAX_HEADERS": "20",
        "TOKENGATE_T_HEADER_TIMEOUT": "2.5",
        "TOKENGATE_T_KEEP_ALIVE_TIMEOUT": "7",
        "TOKENGATE_T_MAX_CLIENT_CONNECTIONS": "64",
    }
    (options,) = _seen([], env)
    assert options.limits() == ServerLimits(8192, 20, 2.5, 7, 64)


def test_a_cap_beyond_the_descriptor_limit_is_refused() -> None:
    """More connections than the file-descriptor limit leaves: refused, not a later EMFILE."""

    @click.command()
    @serving_options("TOKENGATE_T")
    def command(serving: ServingOptions) -> None:
        serving.limits()

    result = CliRunner().invoke(command, ["--max-client-connections", "100000000"])
    assert result.exit_code != 0
    assert "file descriptors" in result.output


@pytest.mark.parametrize("name", SERVERS)
@pytest.mark.parametrize("problem", ["mismatched-key", "missing-cert", "half-pair"])
def test_every_server_refuses_a_bad_pair(name: str, problem: str, pki: Pki, tmp_path: Path) -> None:
    """Fail closed before listening: a key of another certificate, a missing file, or half a
    pair is a usage error naming the problem."""
    pairs = {
        "mismatched-key": (["--tls-cert", str(pki.cert), "--tls-key", str(pki.other_key)],
                           "does not match the certificate"),
        "missing-cert": (["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pki.key)],
                         "cannot read the TLS certificate"),
        "half-pair": (["--tls-cert", str(pki.cert)], "give both --tls-cert and --tls-key"),
    }  # fmt: skip
    args, message = pairs[problem]
    validator = [] if name == "serve" else VALIDATOR
    result = CliRunner().invoke(main, [name, *REQUIRED.get(name, []), *validator, *args], env={})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_derives_an_https_issuer_with_tls(pki: Pki) -> None:
    """The issuer identifier follows the listener's scheme (RFC 8414 §2)."""
    from tokengate.cli.serve import _issuer  # noqa: PLC0415

    assert _issuer(None, "https", "127.0.0.1", 9443) == "https://127.0.0.1:9443"
    assert _issuer(None, "http", "127.0.0.1", 9000) == "http://127.0.0.1:9000"
    assert _issuer("https://as.example", "https", "127.0.0.1", 9443) == "https://as.example"
    with pytest.raises(click.BadParameter):
        _issuer("http://as.example", "https", "127.0.0.1", 9443)
