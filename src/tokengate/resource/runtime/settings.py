"""Everything a validator is configured by, in one frozen value (the CLI's option group maps
onto it field by field, defaults included)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokengate.resource.protocol.dpop import DEFAULT_PROOF_POLICY, ProofPolicy
from tokengate.resource.protocol.resilience import DEFAULT_RETRY, RetryPolicy
from tokengate.resource.runtime.client import DEFAULT_TIMEOUTS, Timeouts
from tokengate.resource.runtime.subscriber import (
    DEFAULT_OUTAGE_TTL,
    DEFAULT_STREAM_TIMEOUTS,
    StreamTimeouts,
)


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    """Where and how to introspect, how long answers may be cached, and revocation events.

    Give `issuer` (RFC 8414 discovery of both endpoints) or `introspection_url` (the events
    endpoint is then `…/oauth2/events` beside it, unless `events_url` says otherwise).
    Revocation events are followed by default: cached answers are kept for their lifetime
    (up to `max_ttl`) while the feed is live, and at most `outage_ttl` seconds while it is not.
    `ca_file`: only the CAs in this PEM file are trusted for https:// to the issuer.
    `dpop`: how DPoP proofs (RFC 9449) are checked; `dpop_replay_entries` bounds the proofs
    remembered against replay (more proofs than that within `dpop.max_age` → 503).
    The feed counts as down after `stream_timeouts.read` seconds without a byte (the server
    sends a heartbeat every 2 s): a revocation is honoured within that plus `outage_ttl` even
    when the authorization server hangs instead of closing the connection (10 s by default).
    """

    client_id: str
    client_secret: str = field(repr=False)
    issuer: str | None = None
    introspection_url: str | None = None
    audience: str | None = None
    max_entries: int = 10_000
    max_ttl: float = 300.0
    negative_ttl: float = 0.0
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    retry: RetryPolicy = DEFAULT_RETRY
    failure_threshold: int = 5
    cooldown: float = 5.0
    revocation_events: bool = True
    events_url: str | None = None
    outage_ttl: float = DEFAULT_OUTAGE_TTL
    stream_timeouts: StreamTimeouts = DEFAULT_STREAM_TIMEOUTS
    shared_cache_timeout: float = 0.25
    allow_insecure: bool = False
    ca_file: str | None = None  # PEM CAs trusted for https:// to the issuer (None: the system's)
    dpop: ProofPolicy = DEFAULT_PROOF_POLICY
    dpop_replay_entries: int = 200_000
    # RFC 9701: ask for signed answers and accept nothing else (needs `issuer`, the expected
    # `iss`; the keys come from its metadata's `jwks_uri` unless `jwks_url` names them).
    signed_introspection: bool = False
    jwks_url: str | None = None

    def __post_init__(self) -> None:
        if self.issuer is not None and self.introspection_url is not None:
            raise ValueError("give one of issuer or introspection_url, not both")
        if min(self.max_ttl, self.negative_ttl, self.outage_ttl) < 0 or self.max_entries < 0:
            raise ValueError("cache bounds must not be negative")
        if self.dpop_replay_entries < 1:
            raise ValueError("dpop_replay_entries must be >= 1")
        if self.signed_introspection and self.issuer is None:
            raise ValueError("signed_introspection needs issuer (the expected iss)")
        if self.failure_threshold < 1 or self.cooldown <= 0 or self.shared_cache_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1, cooldown and timeouts > 0")

    @property
    def retry_after(self) -> int:
        """Seconds a 503 tells the client to wait when the server gave no hint of its own."""
        return max(1, round(self.cooldown))
