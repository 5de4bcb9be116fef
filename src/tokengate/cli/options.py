"""Option groups shared by the commands that validate tokens (`example-resource-server`,
`gateway`, and whatever validates next): defined once, defaults taken from `ValidatorSettings`.

One environment scheme: every option of a command also reads `<PREFIX>_<OPTION>` (upper case,
`-` as `_`), the prefix naming the command (`TOKENGATE_RS`, `TOKENGATE_GW`, ...). Repeatable
options take several values from one variable separated by `;` (patterns may hold spaces).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import click

from tokengate.edge.claims import DEFAULT_CLAIM_HEADERS, ClaimHeader
from tokengate.gateway.settings import build_policy, parse_scope_rule
from tokengate.resource import (
    DEFAULT_TOKEN_HEADER,
    Policy,
    ProofPolicy,
    Timeouts,
    ValidatorSettings,
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ValidatorSettings)}


class Listed(click.ParamType[str, Any]):
    """Text; several values in one environment variable are separated by `;`."""

    name = "text"
    envvar_list_splitter = ";"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value).strip()


def env_option(prefix: str, *decls: str, **attrs: Any) -> Decorator:
    """`click.option` reading `<prefix>_<NAME>` too (NAME from the first long option name)."""
    long = next(d for d in decls if d.startswith("--")).split("/")[0]
    name = long.removeprefix("--").upper().replace("-", "_")
    return click.option(*decls, envvar=f"{prefix}_{name}", show_envvar=True, **attrs)


@dataclass(frozen=True, slots=True)
class ValidatorOptions:
    """What the validator options said, turned into settings by `settings()`."""

    issuer: str | None
    introspection_url: str | None
    client_id: str | None
    client_secret: str | None
    client_secret_file: Path | None
    audience: str | None
    token_header: str
    cache_max_ttl: float
    cache_max_entries: int
    negative_cache_ttl: float
    revocation_events: bool
    outage_cache_ttl: float
    heartbeat_timeout: float
    introspection_timeout: float
    circuit_threshold: int
    circuit_cooldown: float
    redis_url: str | None
    tls_ca_file: Path | None
    dpop_origins: tuple[str, ...]
    dpop_max_age: int
    signed_introspection: bool = False
    jwks_url: str | None = None

    def settings(self) -> ValidatorSettings:
        """Validated `ValidatorSettings`; a usage error names what is missing or wrong."""
        if (self.issuer is None) == (self.introspection_url is None):
            raise click.UsageError("give exactly one of --issuer or --introspection-url")
        if not self.client_id:
            raise click.UsageError("give --client-id")
        try:
            return ValidatorSettings(
                client_id=self.client_id,
                client_secret=self._secret(),
                issuer=self.issuer,
                introspection_url=self.introspection_url,
                audience=self.audience,
                max_ttl=self.cache_max_ttl,
                max_entries=self.cache_max_entries,
                negative_ttl=self.negative_cache_ttl,
                revocation_events=self.revocation_events,
                outage_ttl=self.outage_cache_ttl,
                stream_timeouts=replace(_DEFAULTS["stream_timeouts"], read=self.heartbeat_timeout),
                timeouts=Timeouts.within(self.introspection_timeout),
                failure_threshold=self.circuit_threshold,
                cooldown=self.circuit_cooldown,
                ca_file=None if self.tls_ca_file is None else str(self.tls_ca_file),
                dpop=ProofPolicy(max_age=self.dpop_max_age, origins=self.dpop_origins),
                signed_introspection=self.signed_introspection,
                jwks_url=self.jwks_url,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    def _secret(self) -> str:
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise click.UsageError("give exactly one of --client-secret or --client-secret-file")
        if self.client_secret_file is not None:
            secret = self.client_secret_file.read_text(encoding="utf-8").strip()
            if not secret:
                raise click.BadParameter("the file is empty", param_hint="--client-secret-file")
            return secret
        assert self.client_secret is not None
        return self.client_secret


_NAMES = tuple(f.name for f in fields(ValidatorOptions))


def validator_options(prefix: str) -> Decorator:
    """Add the validator option group; the command receives one `validation: ValidatorOptions`."""
    options = _validator_option_list(prefix)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def collected(**values: Any) -> Any:
            mine = {name: values.pop(name) for name in _NAMES}
            return command(validation=ValidatorOptions(**mine), **values)

        decorated: Callable[..., Any] = collected
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def _validator_option_list(prefix: str) -> list[Decorator]:
    def seconds(decl: str, default: float, text: str, low: float = 0) -> Decorator:
        kind = click.FloatRange(min=low)
        return env_option(prefix, decl, default=default, show_default=True, type=kind, help=text)

    return [
        env_option(prefix, "--issuer", help="Discover the endpoints by RFC 8414 metadata."),
        env_option(prefix, "--introspection-url", help="The RFC 7662 endpoint (no discovery)."),
        env_option(prefix, "--client-id", help="This service's client id at the server."),
        env_option(prefix, "--client-secret", help="Its secret (prefer the env variable)."),
        env_option(
            prefix,
            "--client-secret-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Read the secret from this file instead.",
        ),
        env_option(prefix, "--audience", help="Accept only tokens for this audience (RFC 8707)."),
        env_option(prefix, "--token-header", default=DEFAULT_TOKEN_HEADER, show_default=True),
        seconds(
            "--cache-max-ttl",
            _DEFAULTS["max_ttl"],
            "Seconds an introspection answer may be reused (never past the token's exp).",
        ),
        env_option(
            prefix,
            "--cache-max-entries",
            default=_DEFAULTS["max_entries"],
            show_default=True,
            type=click.IntRange(min=0),
            help="Answers kept in memory at most.",
        ),
        seconds(
            "--negative-cache-ttl",
            _DEFAULTS["negative_ttl"],
            "Seconds an inactive answer may be reused (0: never).",
        ),
        env_option(
            prefix,
            "--revocation-events/--no-revocation-events",
            default=_DEFAULTS["revocation_events"],
            show_default=True,
            help="Follow the authorization server's revocation events (evict at once).",
        ),
        seconds(
            "--outage-cache-ttl",
            _DEFAULTS["outage_ttl"],
            "Seconds answers may be reused while revocation events are not received.",
        ),
        seconds(
            "--heartbeat-timeout",
            _DEFAULTS["stream_timeouts"].read,
            "Seconds without a byte on the revocation event stream (the server sends a"
            " heartbeat every 2 s) after which it counts as down and the outage TTL applies.",
            low=0.1,
        ),
        seconds(
            "--introspection-timeout",
            _DEFAULTS["timeouts"].total,
            "Seconds one introspection may take in all, retries included; then 503.",
            low=0.05,
        ),
        env_option(
            prefix,
            "--circuit-threshold",
            default=_DEFAULTS["failure_threshold"],
            show_default=True,
            type=click.IntRange(min=1),
            help="Consecutive failed introspections that open the circuit (503, no call).",
        ),
        seconds(
            "--circuit-cooldown",
            _DEFAULTS["cooldown"],
            "Seconds the circuit stays open before one probe; also the 503's Retry-After.",
            low=0.1,
        ),
        env_option(
            prefix,
            "--redis-url",
            help="Share cached answers, and the DPoP proofs seen (replay), between processes"
            " in Redis (tokengate[redis]).",
        ),
        env_option(
            prefix,
            "--tls-ca-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Trust only the CAs in this PEM file for https:// calls out (to the issuer;"
            " the gateway's upstream too); default: the system's.",
        ),
        env_option(
            prefix,
            "--dpop-origin",
            "dpop_origins",
            multiple=True,
            type=Listed(),
            help="http[s]://HOST[:PORT] clients call (repeatable): a DPoP proof's htu must name"
            " one; default: the request's own scheme and Host (or X-Forwarded-Proto/-Host).",
        ),
        env_option(
            prefix,
            "--dpop-max-age",
            default=_DEFAULTS["dpop"].max_age,
            show_default=True,
            type=click.IntRange(min=1),
            help="Seconds a DPoP proof stays acceptable after its iat (RFC 9449 §11.1).",
        ),
        env_option(
            prefix,
            "--signed-introspection/--no-signed-introspection",
            default=False,
            show_default=True,
            help="Ask for RFC 9701 signed answers and accept nothing else (needs --issuer).",
        ),
        env_option(prefix, "--jwks-url", help="The issuer's JWKS (default: its jwks_uri)."),
    ]


def logging_options(prefix: str) -> Decorator:
    """`--log-level`, `--log-format` and `--access-log`, the same for every server command."""
    options = [
        env_option(
            prefix,
            "--log-level",
            default="info",
            show_default=True,
            type=click.Choice(["debug", "info", "warning", "error"]),
        ),
        env_option(
            prefix,
            "--log-format",
            default="text",
            show_default=True,
            type=click.Choice(["text", "json"]),
            help="json: one object per line.",
        ),
        env_option(
            prefix,
            "--access-log/--no-access-log",
            default=False,
            show_default=True,
            help="A log line per request (off for load).",
        ),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@dataclass(frozen=True, slots=True)
class EdgeRules:
    """What `--protect`, `--require-scope` and `--claim-header` said."""

    protect: tuple[str, ...]
    scope_rules: tuple[str, ...]
    claim_headers: tuple[str, ...]

    def policy(self) -> Policy:
        """Scope rules first, then the protected patterns (none given: `/**`)."""
        try:
            return build_policy(self.protect, [parse_scope_rule(r) for r in self.scope_rules])
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    def identity(self) -> tuple[ClaimHeader, ...]:
        """The identity headers (the defaults unless some were given)."""
        try:
            return tuple(ClaimHeader.parse(h) for h in self.claim_headers) or DEFAULT_CLAIM_HEADERS
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--claim-header") from None


def claim_header_option(prefix: str, text: str) -> Decorator:
    """`--claim-header HEADER=CLAIM` (repeatable), the same for every command that has it."""
    defaults = ", ".join(f"{h.name}={h.claim}" for h in DEFAULT_CLAIM_HEADERS)
    return env_option(
        prefix,
        "--claim-header",
        "claim_headers",
        multiple=True,
        type=Listed(),
        help=f"{text} (repeatable; replaces the defaults {defaults}).",
    )


def edge_rules_options(prefix: str, subject: str) -> Decorator:
    """`--protect`, `--require-scope`, `--claim-header`; the command receives `rules`."""
    options = [
        env_option(
            prefix,
            "--protect",
            multiple=True,
            type=Listed(),
            help=f"Path glob of {subject} needing a token (repeatable; default /**).",
        ),
        env_option(
            prefix,
            "--require-scope",
            "scope_rules",
            multiple=True,
            type=Listed(),
            help='"[METHODS] PATTERN=SCOPES", e.g. "POST /auth-api/items=write".',
        ),
        claim_header_option(prefix, "HEADER=CLAIM for the upstream"),
    ]
    names = ("protect", "scope_rules", "claim_headers")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def collected(**values: Any) -> Any:
            rules = EdgeRules(*(values.pop(name) for name in names))
            return command(rules=rules, **values)

        decorated: Callable[..., Any] = collected
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate
