"""The RFC 7662 introspection client: one per validator, shared by every request.

The sans-I/O parts decide (`protocol.rfc7662` builds requests and parses answers,
`protocol.resilience` decides retries and circuit state); this shell only waits and sends,
over the validator's `HttpTransport`. Properties:

* `client_secret_basic` with RFC 6749 §2.3.1 encoding, `token_type_hint=access_token`;
* pooled keep-alive connections, connect/read timeouts per attempt and a total deadline;
* connection failures retried a bounded number of times with jittered backoff; read timeouts,
  HTTP errors and undecodable bodies are not retried (the server may have acted on them);
* a circuit breaker that fails fast once the authorization server keeps failing;
* the endpoint given explicitly, or discovered lazily from the issuer's RFC 8414 metadata (so
  a resource server starts even while the authorization server is down).

Nothing logged or raised contains the token or the client secret.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokengate.resource.protocol.claims import TokenClaims, parse_claims
from tokengate.resource.protocol.errors import IntrospectionError, IntrospectionUnavailable
from tokengate.resource.protocol.resilience import (
    DEFAULT_RETRY,
    STATE_CODES,
    CircuitBreaker,
    RetryPolicy,
)
from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    HttpRequest,
    HttpResponse,
    IntrospectionRequests,
    check_endpoint,
    check_issuer,
    checked_status,
    jwks_uri,
    metadata_request,
    parse_introspection,
    parse_metadata,
)
from tokengate.resource.runtime.http import AttemptTimeouts, HttpTransport, TransportError
from tokengate.resource.runtime.singleflight import SingleFlight
from tokengate.resource.runtime.stats import Stats

if TYPE_CHECKING:
    from tokengate.resource.runtime.signed import SignedResponses

logger = logging.getLogger("tokengate.resource")
_SIGNED_ACCEPT = "application/token-introspection+jwt"  # RFC 9701 §4
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: to connect, per read, and for the whole introspection including retries."""

    connect: float = 1.0
    read: float = 2.0
    total: float = 3.0

    @classmethod
    def within(cls, total: float) -> Timeouts:
        """All of it in `total` seconds: a read may use the whole budget, a connect 1 s of it."""
        return cls(connect=min(1.0, total), read=total, total=total)

    def for_attempt(self, remaining: float) -> AttemptTimeouts:
        """Timeouts for one attempt, none longer than what is left of the total."""
        return AttemptTimeouts(connect=min(self.connect, remaining), read=min(self.read, remaining))


DEFAULT_TIMEOUTS = Timeouts()


def _timed_out() -> IntrospectionUnavailable:
    return IntrospectionUnavailable("authorization server timed out")


class IntrospectionClient:
    """Async RFC 7662 client over an `HttpTransport` (which it does not own)."""

    def __init__(
        self,
        transport: HttpTransport,
        credentials: ClientCredentials,
        *,
        stats: Stats,
        endpoint: str | None = None,
        issuer: str | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        breaker: CircuitBreaker | None = None,
        allow_insecure: bool = False,
        rng: Callable[[], float] = random.random,
        monotonic: Clock = time.monotonic,
        signed: SignedResponses | None = None,
    ) -> None:
        if (endpoint is None) == (issuer is None):
            raise ValueError("give exactly one of endpoint or issuer")
        if issuer is not None:
            check_issuer(issuer, allow_insecure=allow_insecure)
        self._endpoint = (
            None if endpoint is None else check_endpoint(endpoint, allow_insecure=allow_insecure)
        )
        self.transport = transport
        self.credentials = credentials
        self.issuer = issuer
        self.timeouts = timeouts
        self.retry = retry
        self.stats = stats
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._allow_insecure = allow_insecure
        self._rng = rng
        self._monotonic = monotonic
        self._discovery = SingleFlight[str]()
        self._requests: IntrospectionRequests | None = None
        self.signed = signed

    @property
    def endpoint(self) -> str | None:
        """The introspection endpoint, once known."""
        return self._endpoint

    async def introspect(self, token: str) -> TokenClaims:
        """Ask the authorization server about `token` (RFC 7662 §2.1)."""
        started = self._begin()
        try:
            async with asyncio.timeout(self.timeouts.total):
                claims = await self._introspect(token)
        except TimeoutError:
            self._finish(started, _timed_out())
            raise _timed_out() from None
        except IntrospectionError as exc:
            self._finish(started, exc)
            raise
        self._finish(started, None)
        return claims

    async def discover(self) -> str:
        """The introspection endpoint, fetching RFC 8414 metadata once if needed."""
        if self._endpoint is not None:
            return self._endpoint
        try:
            async with asyncio.timeout(self.timeouts.total):
                return await self._discovery.do("metadata", self._fetch_metadata)
        except TimeoutError:
            raise _timed_out() from None

    async def _introspect(self, token: str) -> TokenClaims:
        requests = self._requests
        if requests is None:
            endpoint = await self.discover()
            accept = None if self.signed is None else _SIGNED_ACCEPT
            requests = self._requests = IntrospectionRequests(endpoint, self.credentials, accept)
        response = await self._send(requests.for_token(token), self._monotonic())
        if self.signed is None:
            return parse_introspection(response)
        return parse_claims(await self.signed.claims(checked_status(response), self._fetch))

    async def _fetch(self, request: HttpRequest) -> HttpResponse:
        """A GET for the signature checks (the issuer's JWKS), within the same timeouts."""
        if self.signed is not None and self.signed.jwks_url is None:
            await self.discover()
        return await self._send(request, self._monotonic())

    async def _fetch_metadata(self) -> str:
        assert self.issuer is not None  # only called when no endpoint was configured
        response = await self._send(metadata_request(self.issuer), self._monotonic())
        endpoint = parse_metadata(response, self.issuer, allow_insecure=self._allow_insecure)
        if self.signed is not None and self.signed.jwks_url is None:
            self.signed.jwks_url = jwks_uri(response, allow_insecure=self._allow_insecure)
        self._endpoint = endpoint
        return endpoint

    async def _send(self, request: HttpRequest, started: float) -> HttpResponse:
        retry = 0
        while True:
            remaining = self.timeouts.total - (self._monotonic() - started)
            try:
                return await self.transport.request(request, self.timeouts.for_attempt(remaining))
            except TransportError as exc:
                await asyncio.sleep(self._next_delay(retry, exc, started))
                retry += 1

    def _next_delay(self, retry: int, exc: TransportError, started: float) -> float:
        """Seconds to wait before retrying after `exc`, or raise when it must not be retried."""
        delay = self.retry.delay(retry, self._rng())
        remaining = self.timeouts.total - (self._monotonic() - started)
        if not exc.retryable or retry + 1 >= self.retry.attempts or delay >= remaining:
            raise IntrospectionUnavailable(f"authorization server {exc}") from exc
        self.stats.introspection_retries.inc()
        return delay

    def _begin(self) -> float:
        now = self._monotonic()
        try:
            self.breaker.allow(now)
        finally:
            self.stats.circuit_state.set(STATE_CODES[self.breaker.state])
        self.stats.introspection_calls.inc()
        return now

    def _finish(self, started: float, error: IntrospectionError | None) -> None:
        now = self._monotonic()
        self.stats.introspection_latency_seconds.observe(now - started)
        if error is None:
            self.breaker.success()
        else:
            self.stats.introspection_failures.inc()
            if self.breaker.failure(now):
                self.stats.circuit_opened.inc()
            logger.warning("token introspection failed: %s", error)
        self.stats.circuit_state.set(STATE_CODES[self.breaker.state])
