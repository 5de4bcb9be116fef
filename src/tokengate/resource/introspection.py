"""RFC 7662 introspection clients over httpx: `IntrospectionClient` (async) and a sync twin.

Both shells share the sans-I/O pieces (`rfc7662` builds requests and parses responses,
`resilience` decides retries and circuit state) and the bookkeeping in `_ClientBase`; they only
differ in how they wait and send. Properties:

* `client_secret_basic` with RFC 6749 §2.3.1 encoding, `token_type_hint=access_token`;
* pooled keep-alive connections, connect/read timeouts per attempt and a total deadline;
* connection failures (connect error or connect timeout) retried a bounded number of times
  with jittered backoff; read timeouts, HTTP errors and undecodable bodies are not retried;
* a circuit breaker that fails fast once the authorization server keeps failing;
* the endpoint given explicitly, or discovered lazily from the issuer's RFC 8414 metadata (so
  a resource server starts even while the authorization server is down).

Nothing logged or raised contains the token or the client secret.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import anyio
import httpx

from tokengate.resource.claims import TokenClaims
from tokengate.resource.errors import IntrospectionError, IntrospectionUnavailable
from tokengate.resource.resilience import (
    DEFAULT_RETRY,
    CircuitBreaker,
    Clock,
    Deadline,
    RetryPolicy,
)
from tokengate.resource.rfc7662 import (
    ClientCredentials,
    HttpRequest,
    HttpResponse,
    check_endpoint,
    check_issuer,
    introspection_request,
    metadata_request,
    parse_introspection,
    parse_metadata,
)
from tokengate.resource.singleflight import SingleFlight
from tokengate.resource.stats import Stats

logger = logging.getLogger("tokengate.resource")

_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30
)


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

    def for_attempt(self, remaining: float) -> httpx.Timeout:
        """httpx timeouts for one attempt, none longer than what is left of the total."""
        connect, read = min(self.connect, remaining), min(self.read, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


DEFAULT_TIMEOUTS = Timeouts()


class _ClientBase:
    """Settings and bookkeeping shared by the async and sync clients; no I/O."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        endpoint: str | None,
        issuer: str | None,
        timeouts: Timeouts,
        retry: RetryPolicy,
        breaker: CircuitBreaker | None,
        stats: Stats | None,
        allow_insecure: bool,
        rng: Callable[[], float],
        monotonic: Clock,
    ) -> None:
        if (endpoint is None) == (issuer is None):
            raise ValueError("give exactly one of endpoint or issuer")
        self.credentials = credentials
        if issuer is not None:
            check_issuer(issuer, allow_insecure=allow_insecure)
        self.issuer = issuer
        self.timeouts = timeouts
        self.retry = retry
        self.stats = stats if stats is not None else Stats()
        self.breaker = breaker if breaker is not None else CircuitBreaker(stats=self.stats)
        self._allow_insecure = allow_insecure
        self._rng = rng
        self._monotonic = monotonic
        self._endpoint = (
            None if endpoint is None else check_endpoint(endpoint, allow_insecure=allow_insecure)
        )

    @property
    def endpoint(self) -> str | None:
        """The introspection endpoint, once known."""
        return self._endpoint

    def _deadline(self) -> Deadline:
        return Deadline(self.timeouts.total, self._monotonic)

    def _metadata(self) -> tuple[HttpRequest, str]:
        assert self.issuer is not None  # only called when no endpoint was configured
        return metadata_request(self.issuer), self.issuer

    def _learn_endpoint(self, response: HttpResponse, issuer: str) -> str:
        self._endpoint = parse_metadata(response, issuer, allow_insecure=self._allow_insecure)
        return self._endpoint

    def _begin(self) -> float:
        self.breaker.allow()
        self.stats.introspection_calls.inc()
        return self._monotonic()

    def _finish(self, started: float, error: IntrospectionError | None) -> None:
        self.stats.introspection_latency_seconds.observe(self._monotonic() - started)
        if error is None:
            self.breaker.success()
            return
        self.stats.introspection_failures.inc()
        self.breaker.failure()
        logger.warning("token introspection failed: %s", error)

    def _next_delay(self, retry: int, exc: httpx.TransportError, deadline: Deadline) -> float:
        """Seconds to wait before retrying after `exc`, or raise when it must not be retried."""
        delay = self.retry.delay(retry, self._rng)
        retryable = isinstance(exc, _CONNECT_ERRORS) and retry + 1 < self.retry.attempts
        if not retryable or delay >= deadline.remaining():
            raise _transport_failure(exc) from exc
        self.stats.introspection_retries.inc()
        return delay


def _transport_failure(exc: httpx.TransportError) -> IntrospectionUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        return IntrospectionUnavailable("authorization server timed out")
    return IntrospectionUnavailable(f"authorization server unreachable ({type(exc).__name__})")


def _timed_out() -> IntrospectionUnavailable:
    return IntrospectionUnavailable("authorization server timed out")


def _undecodable() -> IntrospectionUnavailable:
    # A body that fails its own Content-Encoding is no answer; without this the error
    # escaped the validator as a 500 and left a half-open circuit's probe unreported.
    return IntrospectionUnavailable("authorization server sent an undecodable response")


def _response(response: httpx.Response) -> HttpResponse:
    return HttpResponse(response.status_code, response.content, response.headers.get("retry-after"))


class IntrospectionClient(_ClientBase):
    """Async RFC 7662 client; one per resource server, shared by all requests."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        endpoint: str | None = None,
        issuer: str | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        breaker: CircuitBreaker | None = None,
        stats: Stats | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_insecure: bool = False,
        rng: Callable[[], float] = random.random,
        monotonic: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            credentials,
            endpoint=endpoint,
            issuer=issuer,
            timeouts=timeouts,
            retry=retry,
            breaker=breaker,
            stats=stats,
            allow_insecure=allow_insecure,
            rng=rng,
            monotonic=monotonic,
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            transport=transport, limits=DEFAULT_LIMITS, follow_redirects=False
        )
        self._discovery = SingleFlight[str]()

    async def introspect(self, token: str) -> TokenClaims:
        """Ask the authorization server about `token` (RFC 7662 §2.1)."""
        started = self._begin()
        try:
            with anyio.fail_after(self.timeouts.total):
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
            with anyio.fail_after(self.timeouts.total):
                return await self._discovery.do("metadata", self._fetch_metadata)
        except TimeoutError:
            raise _timed_out() from None

    async def aclose(self) -> None:
        """Close the connection pool if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> IntrospectionClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _introspect(self, token: str) -> TokenClaims:
        endpoint = await self.discover()
        request = introspection_request(endpoint, token, self.credentials)
        return parse_introspection(await self._send(request, self._deadline()))

    async def _fetch_metadata(self) -> str:
        request, issuer = self._metadata()
        return self._learn_endpoint(await self._send(request, self._deadline()), issuer)

    async def _send(self, request: HttpRequest, deadline: Deadline) -> HttpResponse:
        retry = 0
        while True:
            try:
                response = await self._http.request(
                    request.method,
                    request.url,
                    headers=list(request.headers),
                    content=request.body,
                    timeout=self.timeouts.for_attempt(deadline.remaining()),
                )
            except httpx.TransportError as exc:
                await anyio.sleep(self._next_delay(retry, exc, deadline))
                retry += 1
            except httpx.DecodingError as exc:
                raise _undecodable() from exc
            else:
                return _response(response)


class SyncIntrospectionClient(_ClientBase):
    """Blocking twin of `IntrospectionClient` for WSGI; safe to share between threads."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        endpoint: str | None = None,
        issuer: str | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        breaker: CircuitBreaker | None = None,
        stats: Stats | None = None,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        allow_insecure: bool = False,
        rng: Callable[[], float] = random.random,
        monotonic: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            credentials,
            endpoint=endpoint,
            issuer=issuer,
            timeouts=timeouts,
            retry=retry,
            breaker=breaker,
            stats=stats,
            allow_insecure=allow_insecure,
            rng=rng,
            monotonic=monotonic,
        )
        self._owns_http = http is None
        self._http = http or httpx.Client(
            transport=transport, limits=DEFAULT_LIMITS, follow_redirects=False
        )
        self._discovery_lock = threading.Lock()

    def introspect(self, token: str) -> TokenClaims:
        """Ask the authorization server about `token` (RFC 7662 §2.1)."""
        started = self._begin()
        try:
            claims = self._introspect(token, self._deadline())
        except IntrospectionError as exc:
            self._finish(started, exc)
            raise
        self._finish(started, None)
        return claims

    def discover(self) -> str:
        """The introspection endpoint, fetching RFC 8414 metadata once if needed."""
        return self._discover(self._deadline())

    def close(self) -> None:
        """Close the connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SyncIntrospectionClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _introspect(self, token: str, deadline: Deadline) -> TokenClaims:
        request = introspection_request(self._discover(deadline), token, self.credentials)
        return parse_introspection(self._send(request, deadline))

    def _discover(self, deadline: Deadline) -> str:
        if self._endpoint is not None:
            return self._endpoint
        if not self._discovery_lock.acquire(timeout=deadline.remaining()):
            raise _timed_out()  # another thread's discovery outlasted our deadline
        try:
            if self._endpoint is not None:
                return self._endpoint
            request, issuer = self._metadata()
            return self._learn_endpoint(self._send(request, deadline), issuer)
        finally:
            self._discovery_lock.release()

    def _send(self, request: HttpRequest, deadline: Deadline) -> HttpResponse:
        # Without a cancel scope the total is enforced per attempt; a server trickling bytes
        # slower than the read timeout can still stretch one attempt up to `read` seconds.
        retry = 0
        while True:
            if deadline.remaining() <= 0:
                raise _timed_out()
            try:
                response = self._http.request(
                    request.method,
                    request.url,
                    headers=list(request.headers),
                    content=request.body,
                    timeout=self.timeouts.for_attempt(deadline.remaining()),
                )
            except httpx.TransportError as exc:
                time.sleep(self._next_delay(retry, exc, deadline))
                retry += 1
            except httpx.DecodingError as exc:
                raise _undecodable() from exc
            else:
                return _response(response)
