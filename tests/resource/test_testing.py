"""The public test helpers in `tokengate.resource.testing`."""

from __future__ import annotations

import base64

import httpx
import pytest

from tokengate.resource.protocol.rfc7662 import (
    ClientCredentials,
    HttpRequest,
    HttpResponse,
    introspection_request,
)
from tokengate.resource.runtime.client import IntrospectionClient
from tokengate.resource.runtime.http import AttemptTimeouts, ConnectFailed, TimedOut
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.testing import (
    FakeAuthorizationServer,
    FakeClock,
    HandlerTransport,
    claims,
    static_validator,
)

TIMEOUTS = AttemptTimeouts(connect=1.0, read=1.0)


@pytest.mark.anyio
async def test_fake_server_runs_as_an_asgi_app() -> None:
    """The fake serves metadata and introspection over ASGI (as it would under uvicorn)."""
    fake = FakeAuthorizationServer(issuer="http://127.0.0.1:1")
    token = fake.issue(scope="read", sub="u")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)) as http:
        metadata = (await http.get(f"{fake.issuer}/.well-known/oauth-authorization-server")).json()
        assert metadata["introspection_endpoint"] == fake.introspection_url
        auth = (fake.client_id, fake.client_secret)
        form = {"token": token}
        answer = await http.post(fake.introspection_url, data=form, auth=auth)
        assert answer.json()["sub"] == "u"
        fake.revoke(token)
        assert (await http.post(fake.introspection_url, data=form, auth=auth)).json() == {
            "active": False
        }
        missing = await http.get("http://127.0.0.1:1/nowhere")
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_fake_server_transport_serves_the_client() -> None:
    """`transport()` answers the introspection client in memory, discovery included."""
    fake = FakeAuthorizationServer()
    token = fake.issue(scope="read", sub="u")
    credentials = ClientCredentials(fake.client_id, fake.client_secret)
    transport = fake.transport()
    client = IntrospectionClient(transport, credentials, stats=Stats(), issuer=fake.issuer)
    assert (await client.introspect(token)).sub == "u"
    fake.revoke(token)
    assert not (await client.introspect(token)).active
    assert [request.method for request in transport.requests] == ["GET", "POST", "POST"]


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.anyio
async def test_fake_server_expires_tokens_on_its_clock() -> None:
    """Tokens issued with a ttl turn inactive when the fake's clock passes exp."""
    clock = FakeClock()
    fake = FakeAuthorizationServer(clock=clock)
    token = fake.issue(ttl=10)
    transport = fake.transport()
    credentials = ClientCredentials(fake.client_id, fake.client_secret)
    request = introspection_request(fake.introspection_url, token, credentials)
    assert b'"active": true' in (await transport.request(request, TIMEOUTS)).body
    clock.advance(10)
    assert (await transport.request(request, TIMEOUTS)).body == b'{"active": false}'
    headers = (("authorization", _basic("x", "y")),)
    wrong = HttpRequest("POST", fake.introspection_url, headers, request.body)
    assert (await transport.request(wrong, TIMEOUTS)).status == 401


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param("down", ConnectFailed, id="down-is-connect-failed"),
        pytest.param("timeout", TimedOut, id="timeout-is-timed-out"),
    ],
)
async def test_fake_server_failures_are_transport_errors(
    failure: str, error: type[Exception]
) -> None:
    """`down` and `timeout` raise what a real transport would."""
    fake = FakeAuthorizationServer()
    fake.failure = failure  # type: ignore[assignment]
    request = introspection_request(fake.introspection_url, "t", ClientCredentials("a", "b"))
    with pytest.raises(error):
        await fake.transport().request(request, TIMEOUTS)


@pytest.mark.anyio
async def test_handler_transport_takes_sync_and_async_handlers() -> None:
    """A handler may return the response or an awaitable of it; streams give one chunk."""
    request = HttpRequest("GET", "https://as.example/x", ())

    async def later(request: HttpRequest) -> HttpResponse:
        return HttpResponse(201, b"async", None, "text/plain")

    now = HandlerTransport(lambda request: HttpResponse(200, b"sync", None, "text/plain"))
    assert (await now.request(request, TIMEOUTS)).body == b"sync"
    async with HandlerTransport(later).stream(request, TIMEOUTS) as response:
        assert (response.status, response.content_type) == (201, "text/plain")
        assert [chunk async for chunk in response.chunks()] == [b"async"]
    await now.aclose()
    assert now.closed
    assert now.requests == [request]


@pytest.mark.anyio
async def test_static_validator_never_touches_the_network() -> None:
    """`static_validator` answers from its table; its transport refuses every request."""
    validator = static_validator({"t": {"active": True, "scope": "read"}})
    assert validator.subscriber is None
    assert (await validator.validate("t", ["read"])).scopes == {"read"}
    request = HttpRequest("GET", "https://as.example/x", ())
    with pytest.raises(ConnectFailed):
        await validator.transport.request(request, TIMEOUTS)


def test_claims_builder() -> None:
    """`claims()` builds what a parsed RFC 7662 response would give."""
    built = claims(scope="a b", sub="s", exp=5)
    assert built.scopes == {"a", "b"}
    assert (built.sub, built.exp) == ("s", 5)
    assert not claims(active=False).active
