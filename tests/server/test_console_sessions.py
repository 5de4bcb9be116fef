"""Admin console sessions: random ids kept only as digests, fixation-proof sign-in, idle and
absolute expiry, and bounds a flood of login forms cannot use to push out an operator."""

from __future__ import annotations

from tokengate.core.credentials import hash_value
from tokengate.server.console import sessions as module
from tokengate.server.console.sessions import ABSOLUTE_SECONDS, IDLE_SECONDS, Sessions


def signed_in(store: Sessions, now: float = 0.0, token_expires: float = 1e12) -> str:
    pending, _ = store.start_login(now)
    session_id, _ = store.sign_in(pending, "admin-token:x", "digest", token_expires, now)
    return session_id


def test_ids_are_random_and_kept_only_as_digests() -> None:
    """Ids are 256-bit URL-safe strings; the tables hold their SHA-256, never the id."""
    store = Sessions()
    session_id = signed_in(store)
    assert len(session_id) == 43
    rows = store._signed._rows
    assert session_id not in rows
    assert hash_value(session_id) in rows
    assert signed_in(store) != session_id


def test_sign_in_replaces_the_pre_session() -> None:
    """The login form's id is worthless after sign-in; the new session has a new CSRF token."""
    store = Sessions()
    pending, before = store.start_login(0)
    session_id, after = store.sign_in(pending, "admin-token:x", "digest", 1e12, 0)
    assert store.get(pending, 1) is None
    found = store.get(session_id, 1)
    assert found is after
    assert found.signed_in
    assert after.csrf != before.csrf


def test_idle_and_absolute_expiry() -> None:
    """A session ends after IDLE_SECONDS without use, and ABSOLUTE_SECONDS after sign-in even
    in use, or when its admin token expires, whichever is first."""
    store = Sessions()
    idle = signed_in(store)
    assert store.get(idle, IDLE_SECONDS - 1) is not None
    assert store.get(idle, 2 * IDLE_SECONDS - 2) is not None  # idle since IDLE - 1
    assert store.get(idle, 3 * IDLE_SECONDS) is None
    busy = signed_in(store)
    now = 0.0
    while now + IDLE_SECONDS / 2 < ABSOLUTE_SECONDS:
        now += IDLE_SECONDS / 2
        assert store.get(busy, now) is not None
    assert store.get(busy, ABSOLUTE_SECONDS) is None
    short = signed_in(store, token_expires=100)
    assert store.get(short, 99) is not None
    assert store.get(short, 100) is None


def test_csrf_comparison() -> None:
    """The synchronizer token matches itself only (and never None or non-ASCII junk)."""
    _, session = Sessions().start_login(0)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches(session.csrf[:-1])
    assert not session.csrf_matches("é" * 43)


def test_login_form_flood_cannot_evict_a_signed_in_session() -> None:
    """Pre-sessions and signed-in sessions are bounded apart: a flood of login forms pushes
    out only login forms."""
    store = Sessions()
    operator = signed_in(store)
    for _ in range(module.MAX_PENDING + 50):
        store.start_login(1)
    assert len(store._pending) == module.MAX_PENDING
    assert store.get(operator, 2) is not None


def test_expired_login_forms_are_dropped_as_new_ones_come() -> None:
    """Expired pre-sessions go from the front of the table when new ones are added."""
    store = Sessions()
    for _ in range(100):
        store.start_login(0)
    store.start_login(module.LOGIN_SECONDS + 1)
    assert len(store._pending) == 1
