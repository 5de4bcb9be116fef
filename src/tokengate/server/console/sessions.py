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
MAX_SESSIONS = 10_000


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
    """Sessions by the digest of their id; bounded (the oldest go first)."""

    def __init__(self, idle: float = IDLE_SECONDS, absolute: float = ABSOLUTE_SECONDS) -> None:
        self.idle = idle
        self.absolute = absolute
        self._by_digest: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_digest)

    def start_login(self, now: float) -> tuple[str, Session]:
        """A pre-session for the login form: its id and the session (with a CSRF token)."""
        return self._add(Session(new_secret(), now, now, now + LOGIN_SECONDS), now)

    def sign_in(
        self, old_id: str, actor: str, admin_token_hash: str, token_expires: float, now: float
    ) -> tuple[str, Session]:
        """Replace the pre-session by a new signed-in one: a fresh id and CSRF token, so an
        id planted before the login is worthless after it (session fixation)."""
        self.end(old_id)
        expires = min(now + self.absolute, token_expires)
        session = Session(new_secret(), now, now, expires, admin_token_hash, actor)
        return self._add(session, now)

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session with this id, touched; None if unknown, idle too long or expired."""
        if not session_id or len(session_id) > 128:
            return None
        digest = hash_value(session_id)
        session = self._by_digest.get(digest)
        if session is None:
            return None
        if now >= session.expires_at or now - session.last_seen >= self.idle:
            del self._by_digest[digest]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str | None) -> None:
        """Forget a session (logout)."""
        if session_id:
            self._by_digest.pop(hash_value(session_id), None)

    def _add(self, session: Session, now: float) -> tuple[str, Session]:
        self._sweep(now)
        while len(self._by_digest) >= MAX_SESSIONS:
            self._by_digest.popitem(last=False)
        session_id = new_secret()
        self._by_digest[hash_value(session_id)] = session
        return session_id, session

    def _sweep(self, now: float) -> None:
        """Drop expired sessions (on each new one: the table stays as small as its users)."""
        gone = [
            d
            for d, s in self._by_digest.items()
            if now >= s.expires_at or now - s.last_seen >= self.idle
        ]
        for digest in gone:
            del self._by_digest[digest]
