"""Authorization server settings: explicit values, no globals, no environment reads here."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    event_heartbeat: float = 15.0
    access_log: bool = False
    throttle: Limits = field(default_factory=Limits)
    admin_console: bool = False  # the browser console under /admin (`server.console`)
