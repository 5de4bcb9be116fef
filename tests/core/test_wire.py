"""The wire format both sides speak (`tokengate.core.wire`): frames, payload and kinds."""

from __future__ import annotations

import pytest

from tokengate.core.models import RevocationEvent
from tokengate.core.wire import (
    CLIENT_KINDS,
    NO_OP_KINDS,
    TOKEN_KINDS,
    EventKind,
    InvalidEvent,
    Notice,
    encode_notice,
    parse_notice,
    sync_frame,
)
from tokengate.resource.protocol.sse import SSEParser
from tokengate.server.stream import event_frame

HASH = "a" * 64


@pytest.mark.parametrize(
    "notice",
    [
        pytest.param(Notice(42, "token_revoked", "tgc_1", HASH, 1_700_000_000), id="token"),
        pytest.param(Notice(7, "client_disabled", "tgc_2", None, 1_700_000_001.5), id="client"),
        pytest.param(Notice(1, "newer_kind", "tgc_3", None, 0), id="unknown-kind-kept-as-text"),
    ],
)
def test_notice_round_trip(notice: Notice) -> None:
    """What `encode_notice` writes, `parse_notice` reads back unchanged."""
    assert parse_notice(encode_notice(notice)) == notice


def test_server_frame_is_what_the_subscriber_parses() -> None:
    """A stored event framed by the server comes out of the SSE parser as the same notice."""
    event = RevocationEvent(42, EventKind.TOKEN_REVOKED, "tgc_1", HASH, 1_700_000_000)
    (parsed,) = SSEParser().feed(event_frame(event))
    assert (parsed.event, parsed.id) == ("revocation", "42")
    assert parse_notice(parsed.data) == Notice(42, "token_revoked", "tgc_1", HASH, 1_700_000_000)


def test_sync_frame() -> None:
    """`event: sync` carries the head position, also as the event id (for Last-Event-ID)."""
    (parsed,) = SSEParser().feed(sync_frame(9))
    assert (parsed.event, parsed.id, parsed.data) == ("sync", "9", '{"position":9}')


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"position":"1","kind":"k","client_id":"c","occurred_at":0}', id="position"),
        pytest.param('{"position":true,"kind":"k","client_id":"c","occurred_at":0}', id="bool"),
        pytest.param('{"position":1,"client_id":"c","occurred_at":0}', id="no-kind"),
        pytest.param('{"position":1,"kind":"k","occurred_at":0}', id="no-client"),
        pytest.param(
            '{"position":1,"kind":"k","client_id":"c","token_hash":5,"occurred_at":0}', id="hash"
        ),
        pytest.param('{"position":1,"kind":"k","client_id":"c"}', id="no-time"),
    ],
)
def test_malformed_payloads_are_refused(data: str) -> None:
    """A frame the subscriber cannot interpret raises, so it is never skipped silently."""
    with pytest.raises(InvalidEvent):
        parse_notice(data)


def test_every_event_kind_has_a_meaning() -> None:
    """Each kind the server can write is in exactly one of the three groups."""
    groups = (TOKEN_KINDS, CLIENT_KINDS, NO_OP_KINDS)
    for kind in EventKind:
        assert sum(kind.value in group for group in groups) == 1, kind
