"""Stored records (RFC 6749 §2.1 clients, RFC 7662 §4 token activity, revocation events)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.core.records import NOW, make_client, make_token
from tokengate.core.models import EventKind, RevocationEvent


def test_client_defaults() -> None:
    """A new client may not introspect, is enabled and gets one-hour tokens."""
    client = make_client()
    assert (client.can_introspect, client.disabled, client.token_ttl) == (False, False, 3600)
    assert client.audiences == ()


def test_records_are_frozen() -> None:
    """Records are immutable values."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_client().disabled = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_token().revoked_at = NOW  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "now", "active"),
    [
        pytest.param({}, NOW, True, id="at-iat"),
        pytest.param({}, NOW + 3599.9, True, id="just-before-exp"),
        pytest.param({}, NOW + 3600, False, id="rfc7662-4-at-exp"),
        pytest.param({}, NOW - 0.1, False, id="rfc7662-4-before-nbf"),
        pytest.param({"revoked_at": NOW}, NOW + 1, False, id="rfc7662-4-revoked"),
    ],
)
def test_token_activity(changes: dict[str, int], now: float, active: bool) -> None:
    """RFC 7662 §4: active only when not revoked and iat <= now < exp."""
    assert make_token(**changes).is_active(now) is active


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (EventKind.TOKEN_REVOKED, "token_revoked"),
        (EventKind.CLIENT_DISABLED, "client_disabled"),
        (EventKind.CLIENT_DELETED, "client_deleted"),
        (EventKind.SECRET_ROTATED, "secret_rotated"),
    ],
)
def test_event_kinds_are_wire_strings(kind: EventKind, value: str) -> None:
    """Event kinds serialize as their lower-case names."""
    assert kind == value
    assert EventKind(value) is kind


def test_revocation_event_defaults() -> None:
    """A client-wide event carries no token hash."""
    event = RevocationEvent(position=1, kind=EventKind.CLIENT_DISABLED, client_id="c")
    assert (event.token_hash, event.occurred_at) == (None, 0)


def test_records_hold_no_raw_secret() -> None:
    """RFC 6749 §10.3: only digests are stored, so repr shows no raw value."""
    assert "gX1fBat3bV" not in repr(make_client())
    assert "2YotnFZFEjr1zCsicMWpAA" not in repr(make_token())
