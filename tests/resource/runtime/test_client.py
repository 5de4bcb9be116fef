"""The RFC 7662 introspection client over an in-memory transport to a fake authorization server."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tokengate.resource.protocol.errors import (
    CircuitOpen,
    DiscoveryError,
    IntrospectionError,
    IntrospectionUnavailable,
    InvalidIntrospectionResponse,
)
from tokengate.resource.protocol.resilience import CircuitBreaker, RetryPolicy
from tokengate.resource.protocol.rfc7662 import ClientCredentials, HttpRequest, HttpResponse
from tokengate.resource.runtime.client import IntrospectionClient, Timeouts
from tokengate.resource.runtime.http import BrokenResponse, ConnectFailed, HttpTransport
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.testing import FakeAuthorizationServer, FakeClock, HandlerTransport

pytestmark = pytest.mark.anyio

ENDPOINT = "https://as.example/i"


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """A fake authorization server knowing the default resource-server credentials."""
    return FakeAuthorizationServer()


def _client(
    fake: FakeAuthorizationServer, transport: HttpTransport | None = None, **options: Any
) -> IntrospectionClient:
    options.setdefault("endpoint", fake.introspection_url)
    options.setdefault("rng", lambda: 0.0)
    credentials = ClientCredentials(fake.client_id, fake.client_secret)
    return IntrospectionClient(transport or fake.transport(), credentials, stats=Stats(), **options)


def _answering(handler: Any, **options: Any) -> IntrospectionClient:
    """A client of `ENDPOINT` whose every request `handler` answers."""
    transport = HandlerTransport(handler)
    return IntrospectionClient(
        transport, ClientCredentials("a", "b"), stats=Stats(), endpoint=ENDPOINT, **options
    )


async def test_introspects_active_token(fake: FakeAuthorizationServer) -> None:
    """An active token's claims come back; the request follows RFC 7662 §2.1."""
    token = fake.issue(scope="read write", sub="alice", client_id="app")
    client = _client(fake)
    claims = await client.introspect(token)
    assert claims.active
    assert claims.sub == "alice"
    assert claims.scopes == {"read", "write"}
    assert fake.last_credentials == (fake.client_id, fake.client_secret)
    assert fake.last_form == {"token": [token], "token_type_hint": ["access_token"]}
    assert client.stats.introspection_calls.value == 1


async def test_unknown_token_is_inactive_not_an_error(fake: FakeAuthorizationServer) -> None:
    """RFC 7662 §2.3: an unknown token is `active: false`, a normal answer."""
    client = _client(fake)
    assert not (await client.introspect("unknown")).active
    assert client.breaker.state == "closed"


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
    client = _client(fake)
    with pytest.raises(error):
        await client.introspect("tok")
    assert client.stats.introspection_failures.value == 1


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
    client = _answering(lambda request: HttpResponse(200, body, None, "application/json"))
    with pytest.raises(InvalidIntrospectionResponse):
        await client.introspect("tok")


def _bad_gzip(request: HttpRequest) -> HttpResponse:
    raise BrokenResponse("sent an undecodable response")  # what the transport says of bad gzip


async def test_undecodable_body_is_an_upstream_error() -> None:
    """A body failing its Content-Encoding is IntrospectionUnavailable (was an escaping 500)."""
    client = _answering(_bad_gzip, breaker=CircuitBreaker(failure_threshold=1))
    with pytest.raises(IntrospectionUnavailable, match="undecodable"):
        await client.introspect("tok")
    assert client.breaker.state == "open"
    assert client.stats.circuit_opened.value == 1


async def test_retry_after_from_upstream_is_kept(fake: FakeAuthorizationServer) -> None:
    """A 503 with Retry-After passes its hint on."""
    fake.failure = 503
    with pytest.raises(IntrospectionUnavailable) as caught:
        await _client(fake).introspect("tok")
    assert caught.value.retry_after == 7


async def test_wrong_client_credentials_are_an_upstream_error(
    fake: FakeAuthorizationServer,
) -> None:
    """Our own bad credentials (401 from the AS) must not look like a bad token."""
    client = IntrospectionClient(
        fake.transport(),
        ClientCredentials(fake.client_id, "wrong"),
        stats=Stats(),
        endpoint=fake.introspection_url,
    )
    with pytest.raises(IntrospectionUnavailable, match="client id, secret"):
        await client.introspect(fake.issue())


async def test_connection_failures_are_retried_boundedly(fake: FakeAuthorizationServer) -> None:
    """Connection errors are retried up to `attempts` times, then fail."""
    fake.failure = "down"
    transport = fake.transport()
    client = _client(fake, transport, retry=RetryPolicy(attempts=3))
    with pytest.raises(IntrospectionUnavailable, match="unreachable"):
        await client.introspect("tok")
    assert len(transport.requests) == 3
    assert client.stats.introspection_retries.value == 2


async def test_retry_recovers_from_a_transient_connect_error(
    fake: FakeAuthorizationServer,
) -> None:
    """One refused connection followed by success yields the answer."""
    token = fake.issue()
    attempts = 0

    async def flaky(request: HttpRequest) -> HttpResponse:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectFailed("refused")
        return await fake.handle(request)

    assert (await _client(fake, HandlerTransport(flaky)).introspect(token)).active
    assert attempts == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("timeout", id="read-timeout"),
        pytest.param(500, id="5xx"),
        pytest.param("garbage", id="garbage-body"),
    ],
)
async def test_non_connection_failures_are_not_retried(
    fake: FakeAuthorizationServer, failure: str | int
) -> None:
    """Read timeouts and HTTP errors are not retried (the request may have been served)."""
    fake.failure = failure  # type: ignore[assignment]
    transport = fake.transport()
    with pytest.raises(IntrospectionError):
        await _client(fake, transport).introspect("tok")
    assert len(transport.requests) == 1


async def test_broken_responses_are_not_retried() -> None:
    """An answer that is not valid HTTP may still have been acted on: one attempt only."""
    client = _answering(_bad_gzip)
    with pytest.raises(IntrospectionUnavailable):
        await client.introspect("tok")
    assert isinstance(client.transport, HandlerTransport)
    assert len(client.transport.requests) == 1
    assert client.stats.introspection_retries.value == 0


async def test_total_timeout_bounds_a_hanging_server(fake: FakeAuthorizationServer) -> None:
    """A server that never answers in time costs at most the total timeout."""
    fake.delay = 5.0
    client = _client(fake, timeouts=Timeouts(connect=1.0, read=5.0, total=0.2))
    started = time.monotonic()
    with pytest.raises(IntrospectionUnavailable, match="timed out"):
        await client.introspect("tok")
    assert time.monotonic() - started < 1.0
    assert client.stats.introspection_failures.value == 1


def test_attempts_get_timeouts_within_the_total() -> None:
    """Each attempt's connect and read timeouts come from `Timeouts`, none above the total."""
    timeouts = Timeouts(connect=1.0, read=2.0, total=1.5)
    assert timeouts.for_attempt(1.5).connect == 1.0
    assert timeouts.for_attempt(1.5).read == 1.5
    assert timeouts.for_attempt(0.5).connect == 0.5
    assert Timeouts.within(0.5) == Timeouts(connect=0.5, read=0.5, total=0.5)


async def test_circuit_opens_then_half_opens(fake: FakeAuthorizationServer) -> None:
    """After N failures calls fail fast; after the cooldown one probe may close it again."""
    monotonic = FakeClock(0.0)
    breaker = CircuitBreaker(failure_threshold=2, cooldown=10.0)
    transport = fake.transport()
    fake.failure = 500
    client = _client(fake, transport, breaker=breaker, monotonic=monotonic)
    for _ in range(2):
        with pytest.raises(IntrospectionUnavailable):
            await client.introspect("tok")
    assert breaker.state == "open"
    assert client.stats.circuit_state.value == 1
    with pytest.raises(CircuitOpen) as caught:
        await client.introspect("tok")
    assert len(transport.requests) == 2  # no network call while open
    assert caught.value.retry_after == pytest.approx(10.0)
    monotonic.advance(10.0)
    fake.failure = None
    assert not (await client.introspect("tok")).active  # the probe
    assert breaker.state == "closed"
    assert client.stats.circuit_opened.value == 1
    assert client.stats.circuit_state.value == 0  # the gauge follows the state


async def test_discovers_endpoint_from_issuer_once(fake: FakeAuthorizationServer) -> None:
    """RFC 8414: the endpoint comes from the metadata, fetched only once."""
    token = fake.issue()
    client = _client(fake, endpoint=None, issuer=fake.issuer)
    assert client.endpoint is None
    assert (await client.introspect(token)).active
    assert (await client.introspect(token)).active
    assert client.endpoint == fake.introspection_url
    assert fake.metadata_calls == 1


async def test_discovery_rejects_metadata_for_another_issuer(
    fake: FakeAuthorizationServer,
) -> None:
    """RFC 8414 §3.3: `issuer` must equal the configured issuer."""
    client = _client(fake, endpoint=None, issuer="https://other.example")
    with pytest.raises(DiscoveryError, match="issuer"):
        await client.introspect("tok")


async def test_discovery_failure_is_retried_on_next_call(fake: FakeAuthorizationServer) -> None:
    """A resource server started while the AS was down discovers it later."""
    fake.failure = "down"
    client = _client(fake, endpoint=None, issuer=fake.issuer)
    with pytest.raises(IntrospectionUnavailable):
        await client.discover()
    fake.failure = None
    assert await client.discover() == fake.introspection_url


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
    transport = FakeAuthorizationServer().transport()
    with pytest.raises(ValueError, match=message):
        IntrospectionClient(transport, ClientCredentials("a", "b"), stats=Stats(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("endpoint", "allow_insecure"),
    [
        pytest.param("http://127.0.0.1:9/i", False, id="ipv4-loopback"),
        pytest.param("http://[::1]:9/i", False, id="ipv6-loopback"),
        pytest.param("http://localhost/i", False, id="localhost"),
        pytest.param("http://as.internal/i", True, id="allowed-insecure"),
    ],
)
def test_plain_http_allowed_to_loopback_or_on_request(endpoint: str, allow_insecure: bool) -> None:
    """Loopback and explicitly allowed plain-http endpoints are accepted."""
    client = IntrospectionClient(
        FakeAuthorizationServer().transport(),
        ClientCredentials("a", "b"),
        stats=Stats(),
        endpoint=endpoint,
        allow_insecure=allow_insecure,
    )
    assert client.endpoint == endpoint


async def test_nothing_secret_is_logged_or_raised(
    fake: FakeAuthorizationServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failure logs and exceptions never contain the token or the client secret."""
    caplog.set_level(logging.DEBUG)
    token = fake.issue()
    texts: list[str] = []
    client = _client(fake)
    for failure in (500, "garbage", "down", "timeout"):
        fake.failure = failure  # type: ignore[assignment]
        with pytest.raises(IntrospectionError) as caught:
            await client.introspect(token)
        texts += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    texts.append(caplog.text)
    assert caplog.text
    for text in texts:
        assert token not in text
        assert fake.client_secret not in text
