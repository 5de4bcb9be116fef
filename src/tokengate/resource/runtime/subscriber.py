"""Follow the authorization server's revocation events and evict what they name (asyncio).

States (`STATE_CODES` is what the `revocation_stream_state` gauge shows)::

    connecting ──(sync frame: backlog replayed)──▶ live
    connecting, live ──(refusal, error, end of stream, heartbeat timeout)──▶ disconnected
    disconnected ──(backoff: exponential, full jitter, reset by a sync)──▶ connecting
    any ──(aclose / cancelled)──▶ stopped

The server writes a heartbeat on every quiet stream (every 2 s by default); any byte at all
counts as a sign of life, and `StreamTimeouts.read` seconds (5 by default) without one end the
connection: a hung server (SIGSTOP, a stuck disk) or a path that drops packets silently looks
like that, not like a closed connection.

While live, caches keep answers for their whole lifetime (`set_ttl_cap(None)`): a revocation
evicts its entry as soon as its event arrives. Otherwise no answer is trusted for long: before
the first sync the TTL cap is `outage_ttl` at once; after a live stream is lost it becomes
`outage_ttl` that many seconds after the last byte was heard (at once when the stream died of
silence, since `read` ≥ `outage_ttl` by default). Either way an entry is trusted at most
`outage_ttl` past the later of its introspection and the last moment the feed was known live,
so a revocation the stream never delivered is honoured within `max(read, outage_ttl)` of the
server going quiet (10 s at most with the defaults: `read + outage_ttl`), while a reconnection
blip after a server restart does not drop, and re-introspect, every cached token. Reconnection
sends `Last-Event-ID`, so events missed meanwhile are replayed before the next sync lifts the
cap. The server's SSE `retry` hint is not used: the jittered backoff spreads many resource
servers' reconnections after an authorization-server restart.

Nothing here can fail a request: the subscriber only evicts entries and sets the cap, and its
own failures are logged (never a token or a secret) and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from tokengate.core.wire import REVOCATION_EVENT, SYNC_EVENT, InvalidEvent, Notice, parse_notice
from tokengate.resource.protocol.revocations import (
    Backoff,
    EventsUnavailable,
    check_stream_response,
    events_request,
    eviction,
    is_known_kind,
    parse_events_metadata,
)
from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    check_endpoint,
    check_issuer,
    metadata_request,
)
from tokengate.resource.protocol.sse import ServerSentEvent, SSEParser, StreamError
from tokengate.resource.runtime.http import (
    AttemptTimeouts,
    HttpTransport,
    TimedOut,
    TransportError,
)
from tokengate.resource.runtime.stats import Stats

logger = logging.getLogger("tokengate.resource.revocation")

STOPPED, DISCONNECTED, CONNECTING, LIVE = "stopped", "disconnected", "connecting", "live"
STATE_CODES = {STOPPED: 0, DISCONNECTED: 1, CONNECTING: 2, LIVE: 3}
DEFAULT_OUTAGE_TTL = 5.0
Sleep = Callable[[float], Awaitable[None]]


class RevocationTarget(Protocol):
    """What the subscriber drives: `Validator` (its caches) and its `Stats`."""

    @property
    def stats(self) -> Stats:
        """Where the subscriber's counters and gauges go."""
        ...

    async def evict_token_hash(self, token_hash: str) -> bool:
        """Forget one token everywhere."""
        ...

    async def evict_client(self, client_id: str) -> int:
        """Forget every token of a client everywhere."""
        ...

    def set_ttl_cap(self, seconds: float | None) -> None:
        """Cap every cache entry's life, or lift the cap (None)."""
        ...


@dataclass(frozen=True, slots=True)
class StreamTimeouts:
    """Seconds to connect (and to read metadata), and of silence after which the stream is dead
    (the heartbeat timeout).

    `read` must exceed the server's heartbeat interval (`tokengate serve --event-heartbeat`,
    2 s) with room for delays: twice it or more.
    """

    connect: float = 3.0
    read: float = 5.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ValueError("stream timeouts must be positive")

    def stream(self) -> AttemptTimeouts:
        """Timeouts for the long-lived stream."""
        return AttemptTimeouts(connect=self.connect, read=self.read)

    def metadata(self) -> AttemptTimeouts:
        """Timeouts for the RFC 8414 metadata request."""
        return AttemptTimeouts(connect=self.connect, read=self.connect)


DEFAULT_STREAM_TIMEOUTS = StreamTimeouts()
DEFAULT_BACKOFF = Backoff()


class RevocationSubscriber:
    """Keeps a validator's caches in step with the authorization server's revocation events."""

    def __init__(
        self,
        target: RevocationTarget,
        transport: HttpTransport,
        credentials: ClientCredentials,
        *,
        endpoint: str | None = None,
        issuer: str | None = None,
        outage_ttl: float = DEFAULT_OUTAGE_TTL,
        timeouts: StreamTimeouts = DEFAULT_STREAM_TIMEOUTS,
        backoff: Backoff = DEFAULT_BACKOFF,
        allow_insecure: bool = False,
        rng: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (endpoint is None) == (issuer is None):
            raise ValueError("give exactly one of endpoint or issuer")
        if outage_ttl < 0:
            raise ValueError("outage_ttl must not be negative")
        self.target = target
        self.stats = target.stats
        self.credentials = credentials
        if issuer is not None:
            check_issuer(issuer, allow_insecure=allow_insecure)
        self.issuer = issuer
        self.outage_ttl = outage_ttl
        self.timeouts = timeouts
        self.backoff = backoff
        self._endpoint = (
            None if endpoint is None else check_endpoint(endpoint, allow_insecure=allow_insecure)
        )
        self._allow_insecure = allow_insecure
        self.transport = transport
        self._rng, self._sleep, self._clock = rng, sleep, clock
        self._state = STOPPED
        self._last_id: str | None = None
        self._failures = 0  # consecutive connection attempts without a sync
        self._heard = clock()  # when the last byte of a stream arrived
        self._task: asyncio.Task[None] | None = None
        self._cap_timer: asyncio.Task[None] | None = None

    @property
    def state(self) -> str:
        """`connecting`, `live`, `disconnected` or `stopped`."""
        return self._state

    @property
    def endpoint(self) -> str | None:
        """The events endpoint, once known."""
        return self._endpoint

    @property
    def last_event_id(self) -> str | None:
        """The position of the last event applied (sent as `Last-Event-ID` on reconnection)."""
        return self._last_id

    def status(self) -> dict[str, object]:
        """A JSON-ready summary for status pages (no secrets)."""
        return {
            "state": self._state,
            "last_event_id": self._last_id,
            "outage_ttl": self.outage_ttl,
            "reconnects": self.stats.revocation_stream_reconnects.value,
            "events_applied": self.stats.revocation_events_applied.value,
        }

    def start(self) -> None:
        """Run in the background on the current event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="tokengate-revocation-events")

    async def aclose(self) -> None:
        """Stop following (caches go back to the outage cap); the transport stays open."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> RevocationSubscriber:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def run(self) -> None:
        """Follow the stream until cancelled; raises nothing else."""
        self._cap_now()
        try:
            while True:
                self._set_state(CONNECTING)
                self._lost(await self._session())
                delay = self.backoff.delay(self._failures, self._rng())
                self._failures += 1
                await self._sleep(delay)
                self.stats.revocation_stream_reconnects.inc()
        finally:
            self._cancel_cap_timer()
            self._cap_now()
            self._set_state(STOPPED)

    async def _session(self) -> str:
        """One connection, start to end; returns why it ended."""
        try:
            await self._follow()
        except TimedOut:
            return "timed out"
        except TransportError as exc:
            return f"connection failed ({exc})"
        except EventsUnavailable as exc:
            if self.issuer is not None:
                self._endpoint = None  # look the endpoint up again next time
            return str(exc)
        except (InvalidEvent, StreamError) as exc:
            return str(exc)
        except Exception as exc:  # e.g. a shared cache failing to evict: replay after reconnecting
            logger.warning("revocation events: unexpected error", exc_info=True)
            return f"unexpected {type(exc).__name__}"
        return "the server ended the stream"

    async def _follow(self) -> None:
        request = events_request(await self._events_url(), self.credentials, self._last_id)
        async with self.transport.stream(request, self.timeouts.stream()) as response:
            check_stream_response(response.status, response.content_type)
            parser = SSEParser()
            async for chunk in response.chunks():
                self._heard = self._clock()  # heartbeats are bytes too: any byte is life
                for event in parser.feed(chunk):
                    await self._handle(event)

    async def _events_url(self) -> str:
        if self._endpoint is None:
            assert self.issuer is not None  # the constructor demands one or the other
            request = metadata_request(self.issuer)
            document = await self.transport.request(request, self.timeouts.metadata())
            self._endpoint = parse_events_metadata(
                document, self.issuer, allow_insecure=self._allow_insecure
            )
        return self._endpoint

    async def _handle(self, event: ServerSentEvent) -> None:
        if event.event == REVOCATION_EVENT:
            await self._apply(parse_notice(event.data))
            self._commit(event.id)  # only once applied: an error before this replays the event
        elif event.event == SYNC_EVENT:
            self._commit(event.id)
            self._caught_up()

    def _commit(self, event_id: str) -> None:
        if event_id:
            self._last_id = event_id
            if event_id.isdigit():
                self.stats.revocation_stream_position.set(int(event_id))

    async def _apply(self, notice: Notice) -> None:
        action = eviction(notice)
        if action is not None and action[0] == "token":
            await self.target.evict_token_hash(action[1])
        elif action is not None:
            await self.target.evict_client(action[1])
        if not is_known_kind(notice.kind):
            logger.info("revocation event of unknown kind %r: evicted its client", notice.kind)
        self.stats.revocation_events_applied.inc()
        self.stats.revocation_lag_seconds.observe(max(0.0, self._clock() - notice.occurred_at))

    def _caught_up(self) -> None:
        attempts, self._failures = self._failures + 1, 0
        if self._state == LIVE:
            return
        self._cancel_cap_timer()
        self.target.set_ttl_cap(None)
        self._set_state(LIVE)
        logger.info(
            "revocation events live at position %s (attempt %d); cache entries kept for their"
            " lifetime",
            self._last_id,
            attempts,
        )

    def _lost(self, reason: str) -> None:
        if self._state == LIVE:
            silence = max(0.0, self._clock() - self._heard)  # (a clock stepped back: none)
            remaining = max(0.0, self.outage_ttl - silence)
            logger.warning(
                "revocation events lost (%s); cached answers trusted %gs more at most",
                reason,
                remaining,
            )
            if remaining > 0:
                self._cap_timer = asyncio.create_task(self._cap_later(remaining))
            else:
                self._cap_now()
        elif (attempt := self._failures + 1) & (attempt - 1) == 0:  # attempts 1, 2, 4, 8…
            logger.warning(
                "revocation events unavailable (%s, attempt %d); cached answers capped at %gs",
                reason,
                attempt,
                self.outage_ttl,
            )
        else:
            logger.debug("revocation events unavailable (%s)", reason)
        self._set_state(DISCONNECTED)

    async def _cap_later(self, delay: float) -> None:
        await self._sleep(delay)
        self._cap_now()

    def _cap_now(self) -> None:
        self.target.set_ttl_cap(self.outage_ttl)

    def _cancel_cap_timer(self) -> None:
        timer, self._cap_timer = self._cap_timer, None
        if timer is not None:
            timer.cancel()

    def _set_state(self, state: str) -> None:
        self._state = state
        self.stats.revocation_stream_state.set(STATE_CODES[state])
