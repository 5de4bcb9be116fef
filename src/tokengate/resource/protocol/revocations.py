"""Sans-I/O side of following revocation events: where, how to ask, what each event means.

The authorization server's `GET /oauth2/events` is a server-sent-events stream in the format
`tokengate.core.wire` defines: `event: revocation` frames whose JSON data names a token by its
SHA-256 hex (the key of every cache here) or a client whose tokens all ended, then one
`event: sync` frame once the backlog is replayed. The endpoint comes from RFC 8414 metadata
(`revocation_events_endpoint`), from the introspection URL, or from configuration; the
subscriber authenticates like an introspection call (RFC 6749 §2.3.1 Basic) and resumes with
`Last-Event-ID` (WHATWG HTML §9.2.4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from tokengate.core.wire import (
    CLIENT_KINDS,
    EVENTS_METADATA_MEMBER,
    EVENTS_PATH,
    INTROSPECT_PATH,
    NO_OP_KINDS,
    TOKEN_KINDS,
    InvalidEvent,
    Notice,
)
from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    HttpRequest,
    HttpResponse,
    check_endpoint,
)


class EventsUnavailable(Exception):
    """The events endpoint cannot be found or refused the subscription (retried with backoff)."""


Eviction = tuple[Literal["token", "client"], str]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential reconnection delays with "full jitter": uniform in [0, min(cap, base·2ⁿ)]."""

    base: float = 0.25
    cap: float = 10.0

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait before reconnection attempt `attempt` (0 after a healthy stream);
        `draw` is uniform in [0, 1)."""
        return draw * min(self.cap, self.base * 2.0 ** min(attempt, 62))


def events_url_from_introspection(introspection_url: str) -> str:
    """`…/oauth2/introspect` → `…/oauth2/events` (prefix kept), else origin + `/oauth2/events`."""
    parts = urlsplit(introspection_url)
    path = parts.path.rstrip("/")
    if path.endswith(INTROSPECT_PATH):
        path = path.removesuffix(INTROSPECT_PATH) + EVENTS_PATH
    else:
        path = EVENTS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_events_metadata(response: HttpResponse, issuer: str, *, allow_insecure: bool) -> str:
    """RFC 8414 §3.2-3.3: `revocation_events_endpoint` of a document whose `issuer` matches."""
    if response.status != 200:
        raise EventsUnavailable(f"metadata request answered HTTP {response.status}")
    try:
        document = json.loads(response.body)
    except (ValueError, RecursionError):
        raise EventsUnavailable("metadata is not JSON") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise EventsUnavailable("metadata 'issuer' does not equal the configured issuer")
    endpoint = document.get(EVENTS_METADATA_MEMBER)
    if not isinstance(endpoint, str):
        raise EventsUnavailable(f"metadata has no '{EVENTS_METADATA_MEMBER}'")
    try:
        return check_endpoint(endpoint, allow_insecure=allow_insecure)
    except ValueError as exc:
        raise EventsUnavailable(f"'{EVENTS_METADATA_MEMBER}' is unusable: {exc}") from None


def events_request(
    endpoint: str, credentials: ClientCredentials, last_event_id: str | None
) -> HttpRequest:
    """The subscription: Basic-authenticated GET, resuming after `last_event_id` if known."""
    headers = [
        ("authorization", credentials.basic_authorization()),
        ("accept", "text/event-stream"),
        ("cache-control", "no-store"),
    ]
    if last_event_id:
        headers.append(("last-event-id", last_event_id))
    return HttpRequest("GET", endpoint, tuple(headers))


def check_stream_response(status: int, content_type: str | None) -> None:
    """Accept only a 200 `text/event-stream` (anything else is retried later)."""
    if status != 200:
        hint = " (check the client's credentials and introspection permission)"
        raise EventsUnavailable(
            f"events endpoint answered HTTP {status}{hint if status in (401, 403) else ''}"
        )
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "text/event-stream":
        raise EventsUnavailable(f"events endpoint answered {media or 'no content type'}")


def eviction(notice: Notice) -> Eviction | None:
    """What a notice asks of the caches: forget one token, every token of a client, or nothing."""
    if notice.kind in TOKEN_KINDS:
        if not notice.token_hash:
            raise InvalidEvent(f"{notice.kind} event without token_hash")
        return ("token", notice.token_hash)
    if notice.kind in NO_OP_KINDS:
        return None
    # CLIENT_KINDS, and (to fail safe) kinds newer than this library: re-introspecting a
    # client's tokens costs little, trusting a token the server meant to end costs a lot.
    return ("client", notice.client_id)


def is_known_kind(kind: str) -> bool:
    """True for the kinds this library understands."""
    return kind in TOKEN_KINDS or kind in CLIENT_KINDS or kind in NO_OP_KINDS
