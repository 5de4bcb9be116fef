"""Admin console sessions: server-side, in this process's memory, with idle and absolute expiry.

A session id is 256 random bits (`secrets.token_urlsafe(32)`), sent only in the session cookie
and kept here only as its SHA-256 digest, so a memory dump holds no usable cookie. Each session
has its own CSRF synchronizer token (OWASP CSRF cheat sheet), compared in constant time.

Why memory and not a table: a session lives minutes, dies with the process (a restart logs
everyone out, which fails closed), and needs no migration on three backends. The price is that
replicas do not share sessions: enable the console on one replica, or route `/admin` to one
(sticky) behind a load balancer. A session also ends as soon as its admin token is expired or
revoked: every request re-reads the token (`Console`).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from tokengate.core.credentials import hash_value

IDLE_SECONDS = 15 * 60
ABSOLUTE_SECONDS = 8 * 3600
LOGIN_SECONDS = 10 * 60  # a login form's pre-session (it only carries the form's CSRF token)
MAX_PENDING = 10_000
MAX_SIGNED_IN = 1_000


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    """One browser's session: anonymous (a login form) until `actor` is set by a login."""

    csrf: str
    created_at: float
    last_seen: float
    expires_at: float
    admin_token_hash: str | None = None
    actor: str | None = None
    flash: list[str] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        """True once an admin token logged this session in."""
        return self.actor is not None

    def csrf_matches(self, presented: str | None) -> bool:
        """Constant-time comparison with the session's synchronizer token."""
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.csrf.encode()
        )


class Sessions:
    """Sessions by the digest of their id, in two bounded tables: login forms (pre-sessions)
    and signed-in sessions, so a flood of login-form loads can only push out other login
    forms, never a signed-in operator."""

    def __init__(self, idle: float = IDLE_SECONDS, absolute: float = ABSOLUTE_SECONDS) -> None:
        self.idle = idle
        self.absolute = absolute
        self._pending = _Table(MAX_PENDING)
        self._signed = _Table(MAX_SIGNED_IN)

    def __len__(self) -> int:
        return len(self._pending) + len(self._signed)

    def start_login(self, now: float) -> tuple[str, Session]:
        """A pre-session for the login form: its id and the session (with a CSRF token)."""
        return self._pending.add(Session(new_secret(), now, now, now + LOGIN_SECONDS), now)

    def sign_in(
        self, old_id: str, actor: str, admin_token_hash: str, token_expires: float, now: float
    ) -> tuple[str, Session]:
        """Replace the pre-session by a new signed-in one: a fresh id and CSRF token, so an
        id planted before the login is worthless after it (session fixation)."""
        self.end(old_id)
        expires = min(now + self.absolute, token_expires)
        session = Session(new_secret(), now, now, expires, admin_token_hash, actor)
        return self._signed.add(session, now)

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session with this id, touched; None if unknown, idle too long or expired."""
        if not session_id or len(session_id) > 128:
            return None
        digest = hash_value(session_id)
        for table in (self._signed, self._pending):
            session = table.get(digest)
            if session is None:
                continue
            if now >= session.expires_at or now - session.last_seen >= self.idle:
                table.pop(digest)
                return None
            session.last_seen = now
            return session
        return None

    def end(self, session_id: str | None) -> None:
        """Forget a session (logout)."""
        if session_id:
            digest = hash_value(session_id)
            self._signed.pop(digest)
            self._pending.pop(digest)


class _Table:
    """Sessions in creation order, at most `limit` (the oldest go first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._rows: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, digest: str) -> Session | None:
        return self._rows.get(digest)

    def pop(self, digest: str) -> None:
        self._rows.pop(digest, None)

    def add(self, session: Session, now: float) -> tuple[str, Session]:
        """Store a session under a new id; returns the id (kept here only as its digest)."""
        # Drop from the front while expired: O(dropped), not a scan per request. (A session
        # idle too long further back goes when it is next presented, or by the limit.)
        while self._rows:
            first = next(iter(self._rows.values()))
            if now < first.expires_at and len(self._rows) < self.limit:
                break
            self._rows.popitem(last=False)
        session_id = new_secret()
        self._rows[hash_value(session_id)] = session
        return session_id, session
