"""The gateway's configuration, and parsers for the option syntaxes the CLI accepts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import yarl

from tokengate.edge.claims import DEFAULT_CLAIM_HEADERS, ClaimHeader
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER
from tokengate.resource.protocol.responses import DEFAULT_REALM

Mode = Literal["bypass", "introspect"]
RESERVED_PREFIX = "/_tokengate/"
DEFAULT_METRICS_PATH = RESERVED_PREFIX + "metrics"
HEALTH_PATH = RESERVED_PREFIX + "healthz"


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """Seconds: to connect, between reads, between writes, and to get a pooled connection.

    `read` bounds the wait for the response headers and then each gap in a streamed body.
    """

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0


@dataclass(frozen=True, slots=True)
class UpstreamPool:
    """Keep-alive pool to the upstream: at most `max_connections`, busy or idle.

    `keepalive_expiry` stays below uvicorn's default 5 s idle timeout, so the gateway drops an
    idle connection before the upstream does instead of racing it with a new request.
    `max_keepalive` is accepted for compatibility: aiohttp's pool keeps every connection it
    may reuse, so at most `max_connections` sit idle.
    """

    max_connections: int = 100
    max_keepalive: int = 100
    keepalive_expiry: float = 4.0


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where to forward, and (in `introspect` mode) what to protect and what to pass on."""

    upstream: str
    mode: Mode = "bypass"
    timeouts: UpstreamTimeouts = field(default_factory=UpstreamTimeouts)
    pool: UpstreamPool = field(default_factory=UpstreamPool)
    preserve_host: bool = False
    policy: Policy = field(default_factory=lambda: Policy.protect("/**"))
    token_header: str = DEFAULT_TOKEN_HEADER
    claim_headers: tuple[ClaimHeader, ...] = DEFAULT_CLAIM_HEADERS
    realm: str = DEFAULT_REALM
    metrics_path: str | None = DEFAULT_METRICS_PATH
    ca_file: str | None = None  # PEM CAs trusted for an https:// upstream (None: the system's)

    def __post_init__(self) -> None:
        try:
            url = yarl.URL(self.upstream)
        except ValueError:
            url = yarl.URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"upstream must be an http(s) URL with a host: {self.upstream!r}")
        if url.raw_query_string or url.raw_fragment:
            raise ValueError("upstream URL must not have a query or fragment")
        if self.metrics_path is not None and not self.metrics_path.startswith(RESERVED_PREFIX):
            raise ValueError(f"metrics path must start with {RESERVED_PREFIX}")


def parse_listen(text: str) -> tuple[str, int]:
    """`"127.0.0.1:8080"`, `"[::1]:8080"` or `":8080"` (loopback) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_scope_rule(text: str) -> Rule:
    """`"[METHOD[,METHOD]] PATTERN=SCOPE[ SCOPE]"`, e.g. `"POST /auth-api/items=write"`."""
    target, sep, scopes = text.rpartition("=")
    if not sep or not scopes.split():
        raise ValueError(f"expected [METHODS] PATTERN=SCOPES, got {text!r}")
    parts = target.split()
    if len(parts) == 1:
        return Rule(parts[0], scopes=scopes.split())
    if len(parts) == 2:
        return Rule(parts[1], scopes=scopes.split(), methods=parts[0].split(","))
    raise ValueError(f"expected [METHODS] PATTERN=SCOPES, got {text!r}")


def build_policy(protect: Sequence[str], scope_rules: Iterable[Rule] = ()) -> Policy:
    """Scope rules first (in order), then the protected patterns; none given → protect `/**`.

    A scope rule protects its own pattern too. The first rule matching a request decides.
    """
    rules = list(scope_rules)
    rules += [Rule(pattern) for pattern in protect or ([] if rules else ["/**"])]
    return Policy(rules)
