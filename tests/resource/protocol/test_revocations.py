"""Sans-I/O side of the revocation subscriber: endpoints, requests, event data, backoff."""

from __future__ import annotations

import base64
import json

import pytest

from tokengate.core.wire import InvalidEvent, Notice, encode_notice, parse_notice
from tokengate.resource.protocol.revocations import (
    Backoff,
    EventsUnavailable,
    check_stream_response,
    events_request,
    events_url_from_introspection,
    eviction,
    parse_events_metadata,
)
from tokengate.resource.protocol.rfc7662 import ClientCredentials, HttpResponse

ISSUER = "https://as.example"
HASH = "ab" * 32


@pytest.mark.parametrize(
    ("introspection_url", "expected"),
    [
        pytest.param(
            "https://as.example/oauth2/introspect", "https://as.example/oauth2/events", id="root"
        ),
        pytest.param(
            "https://gw.example/auth/oauth2/introspect?x=1",
            "https://gw.example/auth/oauth2/events",
            id="path-prefix-kept-query-dropped",
        ),
        pytest.param(
            "http://127.0.0.1:9000/introspect", "http://127.0.0.1:9000/oauth2/events", id="origin"
        ),
    ],
)
def test_events_url_from_introspection(introspection_url: str, expected: str) -> None:
    """The events URL sits next to the introspection endpoint, else at the origin."""
    assert events_url_from_introspection(introspection_url) == expected


def metadata(**members: object) -> HttpResponse:
    document = {"issuer": ISSUER, "revocation_events_endpoint": ISSUER + "/oauth2/events"}
    return HttpResponse(200, json.dumps({**document, **members}).encode())


def test_metadata_names_the_events_endpoint() -> None:
    """RFC 8414 metadata with a matching issuer gives `revocation_events_endpoint`."""
    endpoint = parse_events_metadata(metadata(), ISSUER, allow_insecure=False)
    assert endpoint == ISSUER + "/oauth2/events"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(metadata(issuer="https://evil.example"), id="rfc8414-3.3-issuer-mismatch"),
        pytest.param(metadata(revocation_events_endpoint=None), id="not-advertised"),
        pytest.param(
            metadata(revocation_events_endpoint="http://as.example/e"), id="plain-http-remote"
        ),
        pytest.param(HttpResponse(404, b"{}"), id="http-404"),
        pytest.param(HttpResponse(200, b"<html>"), id="not-json"),
    ],
)
def test_unusable_metadata(response: HttpResponse) -> None:
    """Anything but a matching document with a usable endpoint is `EventsUnavailable`."""
    with pytest.raises(EventsUnavailable):
        parse_events_metadata(response, ISSUER, allow_insecure=False)


def test_events_request_authenticates_and_resumes() -> None:
    """RFC 6749 §2.3.1 Basic (form-encoded id and secret) and `Last-Event-ID` when known."""
    credentials = ClientCredentials("rs:1", "p@ss word")
    request = events_request(ISSUER + "/oauth2/events", credentials, "41")
    headers = dict(request.headers)
    encoded = headers["authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded) == b"rs%3A1:p%40ss+word"
    assert headers["accept"] == "text/event-stream"
    assert headers["last-event-id"] == "41"
    assert "p@ss" not in repr(request)
    fresh = events_request(ISSUER + "/oauth2/events", credentials, None)
    assert "last-event-id" not in dict(fresh.headers)


@pytest.mark.parametrize(
    ("status", "content_type", "message"),
    [
        pytest.param(401, "application/json", "HTTP 401 (check", id="unauthorized-hint"),
        pytest.param(404, "application/json", "HTTP 404", id="not-found"),
        pytest.param(200, "application/json", "application/json", id="not-an-event-stream"),
        pytest.param(200, None, "no content type", id="no-content-type"),
    ],
)
def test_stream_refusals(status: int, content_type: str | None, message: str) -> None:
    """Only a 200 `text/event-stream` starts a subscription."""
    with pytest.raises(EventsUnavailable, match=message.replace("(", r"\(")):
        check_stream_response(status, content_type)
    check_stream_response(200, "text/event-stream; charset=utf-8")


def test_parse_notice_of_the_server_wire_format() -> None:
    """The JSON data the authorization server sends (see `server.stream.event_frame`)."""
    data = json.dumps(
        {
            "position": 42,
            "kind": "token_revoked",
            "client_id": "tgc_1",
            "token_hash": HASH,
            "occurred_at": 1700000000,
        }
    )
    notice = Notice(42, "token_revoked", "tgc_1", HASH, 1700000000.0)
    assert parse_notice(data) == notice
    assert parse_notice(encode_notice(notice)) == notice


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="not-object"),
        pytest.param('{"position":"1","kind":"k","client_id":"c","occurred_at":1}', id="pos-str"),
        pytest.param('{"position":true,"kind":"k","client_id":"c","occurred_at":1}', id="pos-bool"),
        pytest.param('{"position":1,"client_id":"c","occurred_at":1}', id="no-kind"),
        pytest.param('{"position":1,"kind":"k","occurred_at":1}', id="no-client"),
        pytest.param('{"position":1,"kind":"k","client_id":"c","occurred_at":"x"}', id="bad-time"),
        pytest.param(
            '{"position":1,"kind":"k","client_id":"c","token_hash":1,"occurred_at":1}',
            id="bad-hash",
        ),
    ],
)
def test_parse_notice_rejects_malformed_data(data: str) -> None:
    """Malformed events are errors (the subscriber reconnects and stays capped), never skipped."""
    with pytest.raises(InvalidEvent):
        parse_notice(data)


@pytest.mark.parametrize(
    ("kind", "token_hash", "expected"),
    [
        pytest.param("token_revoked", HASH, ("token", HASH), id="token-revoked"),
        pytest.param("client_disabled", None, ("client", "tgc_1"), id="client-disabled"),
        pytest.param("client_deleted", None, ("client", "tgc_1"), id="client-deleted"),
        pytest.param("secret_rotated", None, None, id="secret-rotated-keeps-tokens"),
        pytest.param("tokens_purged_v2", None, ("client", "tgc_1"), id="unknown-kind-fails-safe"),
    ],
)
def test_eviction(kind: str, token_hash: str | None, expected: object) -> None:
    """Each kind maps to the cache entries it ends."""
    assert eviction(Notice(1, kind, "tgc_1", token_hash, 0.0)) == expected


def test_token_revoked_without_hash_is_invalid() -> None:
    """A token revocation must say which token."""
    with pytest.raises(InvalidEvent):
        eviction(Notice(1, "token_revoked", "tgc_1", None, 0.0))


@pytest.mark.parametrize("attempt", range(12))
@pytest.mark.parametrize("draw", [0.0, 0.3, 0.999999])
def test_backoff_full_jitter_bounds(attempt: int, draw: float) -> None:
    """Delay = draw * min(cap, base * 2**n): never negative, never above the exponential or cap."""
    backoff = Backoff(base=0.25, cap=10.0)
    ceiling = min(10.0, 0.25 * 2**attempt)
    assert backoff.delay(attempt, draw) == pytest.approx(draw * ceiling)
    assert 0.0 <= backoff.delay(attempt, draw) <= ceiling


def test_backoff_survives_huge_attempt_counts() -> None:
    """Days of failed attempts do not overflow the exponent."""
    assert Backoff().delay(10_000, 1.0) == 10.0
