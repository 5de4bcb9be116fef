"""The RFC 7662 introspection clients against an in-process fake authorization server."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from tokengate.resource.protocol.errors import (
    CircuitOpen,
    DiscoveryError,
    IntrospectionError,
    IntrospectionUnavailable,
    InvalidIntrospectionResponse,
)
from tokengate.resource.protocol.resilience import CircuitBreaker, RetryPolicy
from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    HttpResponse,
    introspection_request,
    metadata_url,
    parse_metadata,
)
from tokengate.resource.runtime.client import IntrospectionClient, SyncIntrospectionClient, Timeouts
from tokengate.resource.testing import FakeAuthorizationServer, FakeClock

NO_JITTER: Callable[[], float] = lambda: 0.0  # noqa: E731


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """A fake authorization server knowing the default resource-server credentials."""
    return FakeAuthorizationServer()


def _credentials(fake: FakeAuthorizationServer) -> ClientCredentials:
    return ClientCredentials(fake.client_id, fake.client_secret)


def _client(fake: FakeAuthorizationServer, **options: object) -> IntrospectionClient:
    options.setdefault("endpoint", fake.introspection_url)
    options.setdefault("transport", fake.async_transport())
    options.setdefault("rng", NO_JITTER)
    return IntrospectionClient(_credentials(fake), **options)  # type: ignore[arg-type]


def _sync_client(fake: FakeAuthorizationServer, **options: object) -> SyncIntrospectionClient:
    options.setdefault("endpoint", fake.introspection_url)
    options.setdefault("transport", fake.transport())
    options.setdefault("rng", NO_JITTER)
    return SyncIntrospectionClient(_credentials(fake), **options)  # type: ignore[arg-type]


class _CountingTransport(httpx.AsyncBaseTransport):
    """Counts attempts and delegates to another transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await self.inner.handle_async_request(request)


def test_rfc6749_basic_authorization_vector() -> None:
    """RFC 6749 §2.3.1 example credentials give the RFC's Authorization header."""
    credentials = ClientCredentials("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw")
    assert credentials.basic_authorization() == "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"


def test_basic_credentials_are_form_encoded_before_base64() -> None:
    """RFC 6749 §2.3.1: `:`, spaces and non-ASCII survive via form-encoding."""
    value = ClientCredentials("id:with space", "s€cr+t/%").basic_authorization()
    decoded = base64.b64decode(value.removeprefix("Basic ")).decode("ascii")
    assert decoded == "id%3Awith+space:s%E2%82%ACcr%2Bt%2F%25"


def test_request_and_credentials_hide_secrets_in_repr() -> None:
    """Neither the token nor the secret shows up in a repr."""
    credentials = ClientCredentials("rs", "the-secret")
    request = introspection_request("https://as.example/i", "the-token", credentials)
    assert "the-secret" not in repr(credentials)
    assert "the-token" not in repr(request)
    assert "the-secret" not in repr(request)


@pytest.mark.anyio
async def test_introspects_active_token(fake: FakeAuthorizationServer) -> None:
    """An active token's claims come back; the request follows RFC 7662 §2.1."""
    token = fake.issue(scope="read write", sub="alice", client_id="app")
    async with _client(fake) as client:
        claims = await client.introspect(token)
    assert claims.active
    assert claims.sub == "alice"
    assert claims.scopes == {"read", "write"}
    assert fake.last_credentials == (fake.client_id, fake.client_secret)
    assert fake.last_form == {"token": [token], "token_type_hint": ["access_token"]}
    assert client.stats.introspection_calls.value == 1


@pytest.mark.anyio
async def test_unknown_token_is_inactive_not_an_error(fake: FakeAuthorizationServer) -> None:
    """RFC 7662 §2.3: an unknown token is `active: false`, a normal answer."""
    async with _client(fake) as client:
        assert not (await client.introspect("unknown")).active
    assert client.breaker.state == "closed"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(500, IntrospectionUnavailable, id="5xx"),
        pytest.param(503, IntrospectionUnavailable, id="503"),
        pytest.param("garbage", InvalidIntrospectionResponse, id="garbage-body"),
        pytest.param("down", IntrospectionUnavailable, id="connection-refused"),
        pytest.param("timeout", IntrospectionUnavailable, id="read-timeout"),
    ],
)
async def test_upstream_failures_raise(
    fake: FakeAuthorizationServer, failure: str | int, error: type[IntrospectionError]
) -> None:
    """Unreachable, slow, 5xx or garbage → an IntrospectionError, never an answer."""
    fake.failure = failure  # type: ignore[assignment]
    async with _client(fake) as client:
        with pytest.raises(error):
            await client.introspect("tok")
    assert client.stats.introspection_failures.value == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="json-array"),
        pytest.param(b'{"active":"yes"}', id="active-not-boolean"),
        pytest.param(b"{}", id="active-missing"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
    ],
)
async def test_malformed_bodies_are_upstream_errors(body: bytes) -> None:
    """A 200 that is not an RFC 7662 object is rejected."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    client = IntrospectionClient(
        ClientCredentials("a", "b"), endpoint="https://as.example/i", transport=transport
    )
    with pytest.raises(InvalidIntrospectionResponse):
        await client.introspect("tok")
    await client.aclose()


def _bad_gzip(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"not gzip")


@pytest.mark.anyio
async def test_undecodable_body_is_an_upstream_error() -> None:
    """A body failing its Content-Encoding is IntrospectionUnavailable (was an escaping 500)."""
    client = IntrospectionClient(
        ClientCredentials("a", "b"),
        endpoint="https://as.example/i",
        transport=httpx.MockTransport(_bad_gzip),
        breaker=CircuitBreaker(failure_threshold=1),
    )
    with pytest.raises(IntrospectionUnavailable, match="undecodable"):
        await client.introspect("tok")
    assert client.breaker.state == "open"
    await client.aclose()
    sync = SyncIntrospectionClient(
        ClientCredentials("a", "b"),
        endpoint="https://as.example/i",
        transport=httpx.MockTransport(_bad_gzip),
    )
    with pytest.raises(IntrospectionUnavailable, match="undecodable"):
        sync.introspect("tok")
    sync.close()


@pytest.mark.anyio
async def test_retry_after_from_upstream_is_kept(fake: FakeAuthorizationServer) -> None:
    """A 503 with Retry-After passes its hint on."""
    fake.failure = 503
    async with _client(fake) as client:
        with pytest.raises(IntrospectionUnavailable) as caught:
            await client.introspect("tok")
    assert caught.value.retry_after == 7


@pytest.mark.anyio
async def test_wrong_client_credentials_are_an_upstream_error(
    fake: FakeAuthorizationServer,
) -> None:
    """Our own bad credentials (401 from the AS) must not look like a bad token."""
    client = IntrospectionClient(
        ClientCredentials(fake.client_id, "wrong"),
        endpoint=fake.introspection_url,
        transport=fake.async_transport(),
    )
    with pytest.raises(IntrospectionUnavailable, match="client id, secret"):
        await client.introspect(fake.issue())
    await client.aclose()


@pytest.mark.anyio
async def test_connection_failures_are_retried_boundedly(fake: FakeAuthorizationServer) -> None:
    """Connection errors are retried up to `attempts` times, then fail."""
    fake.failure = "down"
    counting = _CountingTransport(fake.async_transport())
    async with _client(fake, transport=counting, retry=RetryPolicy(attempts=3)) as client:
        with pytest.raises(IntrospectionUnavailable, match="unreachable"):
            await client.introspect("tok")
    assert counting.attempts == 3
    assert client.stats.introspection_retries.value == 2


@pytest.mark.anyio
async def test_retry_recovers_from_a_transient_connect_error(
    fake: FakeAuthorizationServer,
) -> None:
    """One refused connection followed by success yields the answer."""
    token = fake.issue()
    attempts = 0

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx.ConnectError("refused", request=request)
        return await fake.handle_async(request)

    async with _client(fake, transport=httpx.MockTransport(flaky)) as client:
        assert (await client.introspect(token)).active
    assert attempts == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure", [pytest.param("timeout", id="read-timeout"), pytest.param(500, id="5xx")]
)
async def test_non_connection_failures_are_not_retried(
    fake: FakeAuthorizationServer, failure: str | int
) -> None:
    """Read timeouts and HTTP errors are not retried (the request may have been served)."""
    fake.failure = failure  # type: ignore[assignment]
    counting = _CountingTransport(fake.async_transport())
    async with _client(fake, transport=counting) as client:
        with pytest.raises(IntrospectionUnavailable):
            await client.introspect("tok")
    assert counting.attempts == 1


def test_backoff_is_jittered_and_capped() -> None:
    """Full jitter: delay = rng * min(max_delay, base * 2**retry)."""
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.3)
    assert policy.delay(0, lambda: 1.0) == pytest.approx(0.1)
    assert policy.delay(1, lambda: 0.5) == pytest.approx(0.1)
    assert policy.delay(4, lambda: 1.0) == pytest.approx(0.3)


@pytest.mark.anyio
async def test_total_timeout_bounds_a_hanging_server(fake: FakeAuthorizationServer) -> None:
    """A server that never answers in time costs at most the total timeout."""
    fake.delay = 5.0
    timeouts = Timeouts(connect=1.0, read=5.0, total=0.2)
    async with _client(fake, timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(IntrospectionUnavailable, match="timed out"):
            await client.introspect("tok")
    assert time.monotonic() - started < 1.0
    assert client.stats.introspection_failures.value == 1


@pytest.mark.anyio
async def test_circuit_opens_then_half_opens(fake: FakeAuthorizationServer) -> None:
    """After N failures calls fail fast; after the cooldown one probe may close it again."""
    monotonic = FakeClock(0.0)
    breaker = CircuitBreaker(failure_threshold=2, cooldown=10.0, clock=monotonic)
    counting = _CountingTransport(fake.async_transport())
    fake.failure = 500
    async with _client(fake, transport=counting, breaker=breaker) as client:
        for _ in range(2):
            with pytest.raises(IntrospectionUnavailable):
                await client.introspect("tok")
        assert breaker.state == "open"
        with pytest.raises(CircuitOpen) as caught:
            await client.introspect("tok")
        assert counting.attempts == 2  # no network call while open
        assert caught.value.retry_after == pytest.approx(10.0)
        monotonic.advance(10.0)
        fake.failure = None
        assert not (await client.introspect("tok")).active  # the probe
        assert breaker.state == "closed"
    assert breaker.stats.circuit_opened.value == 1
    assert breaker.stats.circuit_state.value == 0  # the gauge follows the state


def test_failed_probe_reopens_and_concurrent_calls_wait() -> None:
    """Half-open lets one probe through; its failure restarts the cooldown."""
    clock = FakeClock(0.0)
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    breaker.failure()
    clock.advance(5.0)
    breaker.allow()  # the probe
    assert breaker.state == "half-open"
    assert breaker.stats.circuit_state.value == 2
    with pytest.raises(CircuitOpen):
        breaker.allow()  # a second caller while the probe runs
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.stats.circuit_state.value == 1
    clock.advance(4.9)
    with pytest.raises(CircuitOpen):
        breaker.allow()


def test_stuck_probe_is_replaced_after_a_cooldown() -> None:
    """A probe that never reports (cancelled) does not keep the circuit open forever."""
    clock = FakeClock(0.0)
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    breaker.failure()
    clock.advance(5.0)
    breaker.allow()
    clock.advance(5.0)
    breaker.allow()  # no exception: a new probe
    breaker.success()
    assert breaker.state == "closed"


@pytest.mark.anyio
async def test_discovers_endpoint_from_issuer_once(fake: FakeAuthorizationServer) -> None:
    """RFC 8414: the endpoint comes from the metadata, fetched only once."""
    token = fake.issue()
    async with _client(fake, endpoint=None, issuer=fake.issuer) as client:
        assert client.endpoint is None
        assert (await client.introspect(token)).active
        assert (await client.introspect(token)).active
    assert client.endpoint == fake.introspection_url
    assert fake.metadata_calls == 1


@pytest.mark.anyio
async def test_discovery_rejects_metadata_for_another_issuer(
    fake: FakeAuthorizationServer,
) -> None:
    """RFC 8414 §3.3: `issuer` must equal the configured issuer."""
    async with _client(fake, endpoint=None, issuer="https://other.example") as client:
        with pytest.raises(DiscoveryError, match="issuer"):
            await client.introspect("tok")


@pytest.mark.anyio
async def test_discovery_failure_is_retried_on_next_call(fake: FakeAuthorizationServer) -> None:
    """A resource server started while the AS was down discovers it later."""
    fake.failure = "down"
    async with _client(fake, endpoint=None, issuer=fake.issuer) as client:
        with pytest.raises(IntrospectionUnavailable):
            await client.discover()
        fake.failure = None
        assert await client.discover() == fake.introspection_url


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        pytest.param(
            "https://as.example",
            "https://as.example/.well-known/oauth-authorization-server",
            id="rfc8414-3.1-no-path",
        ),
        pytest.param(
            "https://as.example/issuer1",
            "https://as.example/.well-known/oauth-authorization-server/issuer1",
            id="rfc8414-3.1-path",
        ),
    ],
)
def test_metadata_url(issuer: str, url: str) -> None:
    """RFC 8414 §3.1: the well-known segment goes between host and path."""
    assert metadata_url(issuer) == url


@pytest.mark.parametrize(
    ("response", "error"),
    [
        pytest.param(HttpResponse(404, b""), DiscoveryError, id="not-found"),
        pytest.param(HttpResponse(502, b""), IntrospectionUnavailable, id="transient"),
        pytest.param(HttpResponse(200, b"[]"), DiscoveryError, id="not-an-object"),
        pytest.param(
            HttpResponse(200, b'{"issuer":"https://as.example"}'), DiscoveryError, id="no-endpoint"
        ),
        pytest.param(
            HttpResponse(
                200,
                b'{"issuer":"https://as.example","introspection_endpoint":"http://evil.example/i"}',
            ),
            DiscoveryError,
            id="insecure-endpoint",
        ),
    ],
)
def test_unusable_metadata(response: HttpResponse, error: type[Exception]) -> None:
    """Metadata that cannot be trusted or used is an error."""
    with pytest.raises(error):
        parse_metadata(response, "https://as.example")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({}, "exactly one", id="neither"),
        pytest.param({"endpoint": "https://a/i", "issuer": "https://a"}, "exactly one", id="both"),
        pytest.param({"endpoint": "http://as.example/i"}, "loopback", id="plain-http"),
        pytest.param({"endpoint": "ftp://as.example/i"}, "absolute", id="not-http"),
        pytest.param({"endpoint": "https://u:p@as.example/i"}, "credentials", id="userinfo"),
        pytest.param({"issuer": "https://as.example?x=1"}, "query", id="issuer-query"),
    ],
)
def test_configuration_errors(options: dict[str, str], message: str) -> None:
    """Endpoints must be absolute https (plain http only to loopback or when allowed)."""
    with pytest.raises(ValueError, match=message):
        IntrospectionClient(ClientCredentials("a", "b"), **options)  # type: ignore[arg-type]


def test_plain_http_allowed_to_loopback_or_on_request() -> None:
    """Loopback and explicitly allowed plain-http endpoints are accepted."""
    credentials = ClientCredentials("a", "b")
    assert SyncIntrospectionClient(credentials, endpoint="http://127.0.0.1:9/i").endpoint
    assert SyncIntrospectionClient(credentials, endpoint="http://[::1]:9/i").endpoint
    assert SyncIntrospectionClient(credentials, endpoint="http://localhost/i").endpoint
    insecure = SyncIntrospectionClient(
        credentials, endpoint="http://as.internal/i", allow_insecure=True
    )
    assert insecure.endpoint == "http://as.internal/i"


@pytest.mark.anyio
async def test_nothing_secret_is_logged_or_raised(
    fake: FakeAuthorizationServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failure logs and exceptions never contain the token or the client secret."""
    caplog.set_level(logging.DEBUG)
    token = fake.issue()
    texts: list[str] = []
    async with _client(fake) as client:
        for failure in (500, "garbage", "down", "timeout"):
            fake.failure = failure
            with pytest.raises(IntrospectionError) as caught:
                await client.introspect(token)
            texts += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    texts.append(caplog.text)
    assert caplog.text
    for text in texts:
        assert token not in text
        assert fake.client_secret not in text


def test_sync_client_introspects(fake: FakeAuthorizationServer) -> None:
    """The sync twin sends the same request and parses the same answer."""
    token = fake.issue(scope="read")
    with _sync_client(fake) as client:
        assert client.introspect(token).scopes == {"read"}
        assert not client.introspect("unknown").active
    assert fake.last_form["token_type_hint"] == ["access_token"]


def test_sync_client_discovers_and_fails_like_the_async_one(
    fake: FakeAuthorizationServer,
) -> None:
    """Discovery, retries and upstream errors behave as in the async client."""
    with _sync_client(fake, endpoint=None, issuer=fake.issuer) as client:
        assert client.discover() == fake.introspection_url
        fake.failure = "down"
        with pytest.raises(IntrospectionUnavailable, match="unreachable"):
            client.introspect("tok")
        assert client.stats.introspection_retries.value == 2
        fake.failure = "garbage"
        with pytest.raises(InvalidIntrospectionResponse):
            client.introspect("tok")


def test_sync_client_gives_up_when_the_deadline_is_spent(fake: FakeAuthorizationServer) -> None:
    """With no time left the sync client fails instead of sending."""
    client = _sync_client(fake, timeouts=Timeouts(total=0.0))
    with pytest.raises(IntrospectionUnavailable, match="timed out"):
        client.introspect("tok")
    client.close()
