"""`RevocationSubscriber` against an in-process event stream (no sockets, no real sleeping)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.fake_events import (
    EVENTS_URL,
    FakeEventServer,
    ManualSleep,
    RecordingTarget,
    revocation_frame,
    sync_frame,
    until,
)
from tokengate.core.credentials import hash_value
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.revocations import Backoff
from tokengate.resource.protocol.rfc7662 import ClientCredentials
from tokengate.resource.runtime.http import TimedOut
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.subscriber import (
    CONNECTING,
    DISCONNECTED,
    LIVE,
    STATE_CODES,
    STOPPED,
    RevocationSubscriber,
)
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeClock, StaticIntrospector, claims
from tokengate.server.settings import Settings

pytestmark = pytest.mark.anyio

SECRET = "rs-secret-do-not-log"
CREDENTIALS = ClientCredentials("rs", SECRET)
OUTAGE_TTL = 5.0
Subscribe = Callable[..., RevocationSubscriber]


def is_outage_timer(delay: float) -> bool:
    return delay == OUTAGE_TTL


def is_backoff(delay: float) -> bool:
    return delay != OUTAGE_TTL


@pytest.fixture
def server() -> FakeEventServer:
    """The authorization server's event stream."""
    return FakeEventServer()


@pytest.fixture
def target() -> RecordingTarget:
    """The validator stand-in the subscriber drives."""
    return RecordingTarget()


@pytest.fixture
def sleep() -> ManualSleep:
    """Sleeps the test releases by hand."""
    return ManualSleep()


@pytest.fixture
async def subscribe(
    server: FakeEventServer, target: RecordingTarget, sleep: ManualSleep, clock: FakeClock
) -> AsyncIterator[Subscribe]:
    """Start subscribers wired to the fakes; stop them afterwards."""
    started: list[RevocationSubscriber] = []

    def start(**options: object) -> RevocationSubscriber:
        settings: dict[str, object] = {
            "endpoint": EVENTS_URL,
            "outage_ttl": OUTAGE_TTL,
            "sleep": sleep,
            "rng": lambda: 1.0,
            "clock": clock,
            **options,
        }
        subscriber = RevocationSubscriber(target, server, CREDENTIALS, **settings)  # type: ignore[arg-type]
        subscriber.start()
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        await subscriber.aclose()


async def live(server: FakeEventServer, subscriber: RevocationSubscriber, position: int) -> None:
    """Wait for an open connection, send `sync` on it, wait until the subscriber is live."""
    await until(
        lambda: (
            subscriber.state == CONNECTING
            and bool(server.connections)
            and not server.connections[-1].closed
        )
    )
    server.connections[-1].send(sync_frame(position))
    await until(lambda: subscriber.state == LIVE)


async def test_events_evict_what_they_name(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe
) -> None:
    """token_revoked evicts the hash, client_disabled/deleted the client, secret_rotated nothing."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    server.connections[-1].send(
        revocation_frame(1, token_hash="h1"),
        revocation_frame(2, "client_disabled", client_id="c2"),
        revocation_frame(3, "client_deleted", client_id="c3"),
        revocation_frame(4, "secret_rotated", client_id="c4"),
    )
    await until(lambda: subscriber.last_event_id == "4")
    assert target.evicted_tokens == ["h1"]
    assert target.evicted_clients == ["c2", "c3"]
    assert target.stats.revocation_events_applied.value == 4
    assert target.stats.revocation_stream_position.value == 4


async def test_sends_credentials_and_resumes_with_last_event_id(
    server: FakeEventServer, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """Basic auth on every connection; after a drop, `Last-Event-ID` is the last applied event."""
    subscriber = subscribe()
    await live(server, subscriber, 10)
    first = server.connections[0]
    assert first.headers["authorization"] == CREDENTIALS.basic_authorization()
    assert first.last_event_id is None
    first.send(revocation_frame(11, token_hash="h"))
    await until(lambda: subscriber.last_event_id == "11")
    first.end()
    await until(lambda: sleep.waiting(is_backoff) == 1)
    sleep.release(is_backoff)
    await until(lambda: len(server.connections) == 2)
    assert server.connections[1].last_event_id == "11"
    assert first.closed


async def test_ttl_cap_until_first_sync_then_lifted(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe
) -> None:
    """Before the first sync answers are capped at the outage TTL; the sync lifts the cap."""
    subscriber = subscribe()
    await until(lambda: len(server.connections) == 1)
    assert (subscriber.state, target.cap) == (CONNECTING, OUTAGE_TTL)
    server.connections[0].send(revocation_frame(1, token_hash="h"))
    await until(lambda: target.evicted_tokens == ["h"])
    assert target.cap == OUTAGE_TTL  # replaying the backlog is not being caught up
    server.connections[0].send(sync_frame(1))
    await until(lambda: subscriber.state == LIVE)
    assert target.cap is None
    assert target.stats.cache_ttl_cap_seconds.value == -1 or target.caps[-1] is None


async def test_losing_the_stream_caps_after_the_outage_ttl(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """A lost stream → disconnected; the cap lands `outage_ttl` later unless caught up first."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    server.connections[0].fail(TimedOut("no heartbeat"))
    await until(lambda: subscriber.state == DISCONNECTED)
    assert target.cap is None  # entries were known good a moment ago
    await until(lambda: sleep.waiting(is_outage_timer) == 1)
    sleep.release(is_outage_timer)
    await until(lambda: target.cap == OUTAGE_TTL)
    sleep.release(is_backoff)
    await live(server, subscriber, 0)
    assert target.cap is None


async def test_a_silent_stream_caps_at_once(
    server: FakeEventServer,
    target: RecordingTarget,
    subscribe: Subscribe,
    sleep: ManualSleep,
    clock: FakeClock,
) -> None:
    """No byte for the heartbeat timeout (≥ outage TTL): the cap applies the moment it ends."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    clock.advance(OUTAGE_TTL)  # the server hung: not even a heartbeat
    server.connections[0].fail(TimedOut("no heartbeat"))
    await until(lambda: subscriber.state == DISCONNECTED)
    assert target.cap == OUTAGE_TTL
    assert sleep.waiting(is_outage_timer) == 0


async def test_the_cap_counts_from_the_last_byte_heard(
    server: FakeEventServer,
    target: RecordingTarget,
    subscribe: Subscribe,
    sleep: ManualSleep,
    clock: FakeClock,
) -> None:
    """A heartbeat, then 2 s of silence, then the stream ends: the cap lands 3 s later, not 5."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    clock.advance(10)
    server.connections[0].send(b": keepalive\n\n")  # any byte is a sign of life
    await until(lambda: subscriber._heard == clock.now)
    clock.advance(2)
    server.connections[0].end()
    await until(lambda: OUTAGE_TTL - 2 in sleep.delays)
    assert target.cap is None
    sleep.release(lambda delay: delay == OUTAGE_TTL - 2)
    await until(lambda: target.cap == OUTAGE_TTL)


async def test_quick_reconnection_never_caps(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """Reconnected and caught up within the outage TTL: the pending cap is cancelled."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    server.connections[0].end()
    await until(lambda: sleep.waiting(is_backoff) == 1)
    sleep.release(is_backoff)
    await live(server, subscriber, 0)
    assert sleep.waiting(is_outage_timer) == 0
    assert target.caps[0] == OUTAGE_TTL
    assert OUTAGE_TTL not in target.caps[1:]


async def test_backoff_grows_with_jitter_and_resets_after_sync(
    server: FakeEventServer, subscribe: Subscribe, sleep: ManualSleep, target: RecordingTarget
) -> None:
    """Down server: delays are rng * min(cap, base * 2**n); a sync resets the exponent."""
    draws = iter([1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    server.down = True
    subscriber = subscribe(rng=lambda: next(draws), backoff=Backoff(base=0.5, cap=4.0))
    for count in range(1, 8):
        await until(lambda count=count: len(sleep.delays) == count)
        server.down = count < 7
        sleep.release()
    assert sleep.delays == [0.5, 0.5, 2.0, 4.0, 4.0, 4.0, 4.0]
    await live(server, subscriber, 0)
    assert target.stats.revocation_stream_reconnects.value == 7
    server.connections[0].end()
    await until(lambda: len(sleep.delays) == 8)
    assert sleep.delays[-1] == 0.0  # attempt 0 again: draw 0.0 of 0.5


@pytest.mark.parametrize(
    ("status", "content_type", "reason"),
    [
        pytest.param(401, "text/event-stream", "HTTP 401", id="unauthorized"),
        pytest.param(200, "text/html", "text/html", id="not-an-event-stream"),
    ],
)
async def test_refusals_are_retried(
    server: FakeEventServer,
    subscribe: Subscribe,
    sleep: ManualSleep,
    caplog: pytest.LogCaptureFixture,
    status: int,
    content_type: str,
    reason: str,
) -> None:
    """A refused subscription is logged (no secret) and retried with backoff, cap kept."""
    server.status, server.content_type = status, content_type
    caplog.set_level(logging.DEBUG, logger="tokengate.resource.revocation")
    subscriber = subscribe()
    await until(lambda: sleep.waiting(is_backoff) == 1)
    assert subscriber.state == DISCONNECTED
    assert reason in caplog.text
    assert SECRET not in caplog.text
    assert CREDENTIALS.basic_authorization() not in caplog.text


async def test_malformed_event_is_not_skipped(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """Bad event data ends the connection and the event is asked for again."""
    subscriber = subscribe()
    await live(server, subscriber, 5)
    server.connections[0].send(b"id: 6\nevent: revocation\ndata: {oops\n\n")
    await until(lambda: sleep.waiting(is_backoff) == 1)
    assert subscriber.last_event_id == "5"
    sleep.release(is_backoff)
    await until(lambda: len(server.connections) == 2)
    assert server.connections[1].last_event_id == "5"


async def test_failed_eviction_is_replayed(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """An eviction that raises (e.g. shared cache down) is retried after reconnecting."""
    target.fail_next_eviction = True
    subscriber = subscribe()
    await live(server, subscriber, 0)
    server.connections[0].send(revocation_frame(1, token_hash="h"))
    await until(lambda: sleep.waiting(is_backoff) == 1)
    assert subscriber.last_event_id == "0"
    sleep.release(is_backoff)
    await until(lambda: len(server.connections) == 2)
    assert server.connections[1].last_event_id == "0"
    server.connections[1].send(revocation_frame(1, token_hash="h"))
    await until(lambda: target.evicted_tokens == ["h"])


async def test_discovers_the_endpoint_from_metadata(
    server: FakeEventServer, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """With an issuer, RFC 8414 `revocation_events_endpoint` is where it subscribes."""
    server.metadata["revocation_events_endpoint"] = "https://as.example/v2/events"
    subscriber = subscribe(endpoint=None, issuer="https://as.example")
    await until(lambda: len(server.connections) == 1)
    assert server.connections[0].request.url == "https://as.example/v2/events"
    assert subscriber.endpoint == "https://as.example/v2/events"


async def test_metadata_without_events_is_retried(
    server: FakeEventServer, subscribe: Subscribe, sleep: ManualSleep
) -> None:
    """An authorization server that does not advertise events keeps the cap and is re-asked."""
    del server.metadata["revocation_events_endpoint"]
    subscriber = subscribe(endpoint=None, issuer="https://as.example")
    await until(lambda: sleep.waiting(is_backoff) == 1)
    assert subscriber.state == DISCONNECTED
    assert server.connections == []


async def test_stats_status_and_lag(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe, clock: FakeClock
) -> None:
    """State gauge follows the state; lag = receive time - occurred_at; status has no secrets."""
    subscriber = subscribe()
    await until(lambda: len(server.connections) == 1)
    assert target.stats.revocation_stream_state.value == STATE_CODES[CONNECTING]
    await live(server, subscriber, 0)
    assert target.stats.revocation_stream_state.value == STATE_CODES[LIVE]
    server.connections[0].send(revocation_frame(1, token_hash="h", occurred_at=clock() - 0.4))
    await until(lambda: subscriber.last_event_id == "1")
    snapshot = target.stats.snapshot()
    assert snapshot["revocation_lag_seconds_count"] == 1
    assert snapshot["revocation_lag_seconds_bucket_le_0.25"] == 0
    assert snapshot["revocation_lag_seconds_bucket_le_0.5"] == 1
    status = subscriber.status()
    assert status["state"] == LIVE
    assert status["events_applied"] == 1
    assert SECRET not in repr(status)


async def test_aclose_stops_and_caps(
    server: FakeEventServer, target: RecordingTarget, subscribe: Subscribe
) -> None:
    """Closing cancels the stream and leaves the caches capped (no feed, no blind trust)."""
    subscriber = subscribe()
    await live(server, subscriber, 0)
    await subscriber.aclose()
    assert subscriber.state == STOPPED
    assert target.stats.revocation_stream_state.value == STATE_CODES[STOPPED]
    assert target.cap == OUTAGE_TTL
    assert server.connections[0].closed


def test_configuration_errors() -> None:
    """Exactly one of endpoint/issuer; plain http only to loopback; no negative TTL."""
    target, server = RecordingTarget(), FakeEventServer()
    with pytest.raises(ValueError, match="exactly one"):
        RevocationSubscriber(target, server, CREDENTIALS)
    with pytest.raises(ValueError, match="loopback"):
        RevocationSubscriber(
            target, server, CREDENTIALS, endpoint="http://as.example/oauth2/events"
        )
    with pytest.raises(ValueError, match="negative"):
        RevocationSubscriber(target, server, CREDENTIALS, endpoint=EVENTS_URL, outage_ttl=-1)


async def test_with_a_real_validator(server: FakeEventServer, clock: FakeClock) -> None:
    """End to end in process: cached for the whole lifetime while live, evicted on the event."""
    token = "opaque-token-value"
    introspector = StaticIntrospector({token: claims(client_id="app", exp=clock() + 3600)})
    settings = ValidatorSettings("rs", SECRET, max_ttl=3600, events_url=EVENTS_URL)
    validator = Validator(settings, introspector=introspector, transport=server, clock=clock)
    subscriber = validator.subscriber
    assert subscriber is not None
    async with validator:
        await live(server, subscriber, 0)
        await validator.lookup(token)
        clock.advance(3000)
        assert (await validator.lookup(token)).active
        assert introspector.calls == 1
        server.connections[0].send(revocation_frame(1, token_hash=hash_value(token)))
        await until(lambda: len(validator.cache) == 0)
        await validator.lookup(token)
        assert introspector.calls == 2
    assert subscriber.state == STOPPED
    assert validator.cache.ttl_cap == 5.0
    assert validator.stats.cache_ttl_cap_seconds.value == 5.0


class GatedIntrospector(StaticIntrospector):
    """Answers only when the test opens the gate, to hold an introspection in flight."""

    def __init__(self, tokens: dict[str, TokenClaims]) -> None:
        super().__init__(tokens)
        self.gate = asyncio.Event()
        self.started = 0

    async def introspect(self, token: str) -> TokenClaims:
        self.started += 1
        await self.gate.wait()
        return await super().introspect(token)


async def test_answer_in_flight_across_an_eviction_is_not_kept(clock: FakeClock) -> None:
    """An answer that may predate a revocation serves its request but is not cached."""
    token = "opaque-token-value"
    introspector = GatedIntrospector({token: claims(client_id="app", exp=clock() + 3600)})
    settings = ValidatorSettings("rs", SECRET, revocation_events=False)
    validator = Validator(
        settings, introspector=introspector, transport=FakeEventServer(), clock=clock
    )
    pending = asyncio.create_task(validator.lookup(token))
    await until(lambda: introspector.started == 1)
    await validator.evict_token_hash(hash_value(token))
    introspector.gate.set()
    assert (await pending).active
    assert len(validator.cache) == 0
    await validator.lookup(token)
    assert len(validator.cache) == 1


def test_the_defaults_bound_a_hung_issuer_at_ten_seconds() -> None:
    """Heartbeat timeout + outage TTL ≤ 10 s, and the timeout outlasts two server heartbeats."""
    settings = ValidatorSettings(client_id="rs", client_secret="s", issuer="https://as.example")
    assert settings.stream_timeouts.read + settings.outage_ttl <= 10.0
    assert settings.stream_timeouts.read > 2 * Settings(issuer="https://as.example").event_heartbeat
