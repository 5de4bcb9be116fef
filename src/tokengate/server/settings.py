"""Authorization server settings: explicit values, no globals, no environment reads here."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokengate.server.issuance_rate import TokenRate
from tokengate.server.throttle import Limits


@dataclass(frozen=True, slots=True)
class Settings:
    """What `create_app` needs besides a store."""

    issuer: str
    realm: str = "tokengate"
    max_body_bytes: int = 16 * 1024
    body_timeout: float = 10.0
    purge_interval: float = 300.0
    retry_after_seconds: int = 2
    event_poll_interval: float = 0.025
    # A comment line on every quiet event stream this often: subscribers treat a few seconds
    # without any byte as a hung server (see `ValidatorSettings.stream_timeouts`).
    event_heartbeat: float = 2.0
    max_event_streams: int = 10_000  # beyond it `GET /oauth2/events` answers 503 + Retry-After
    event_queue_bytes: int = 1024 * 1024  # a stream further behind than this is disconnected
    access_log: bool = False
    throttle: Limits = field(default_factory=Limits)
    # Tokens each client may be issued per second (and at once) in this process; past it 429
    # `temporarily_unavailable` + Retry-After. None: no limit (`server.issuance_rate`).
    max_token_rate: TokenRate | None = None
    admin_console: bool = False  # the browser console under /admin (`server.console`)
    # With `serve --workers N`: this process's index (also reported by /healthz with its pid),
    # and whether it is the one that purges expired tokens (worker 0).
    worker: int | None = None
    purger: bool = True
    # RFC 9449 §8: DPoP proofs at the token endpoint must carry a nonce of ours (`DPoP-Nonce`).
    dpop_nonce: bool = False
    # RFC 9701 signed introspection responses: the key-encryption key sealing the signing keys
    # in the store (`server.signing`). None: the server does not sign (and says so at start).
    # With DPoP nonces on, the nonce key is derived from it (else kept in the store).
    key_encryption_key: bytes | None = field(default=None, repr=False)
    # Seconds between reads of the key set: below a rotation's publication delay (600 s).
    key_refresh_interval: float = 30.0
