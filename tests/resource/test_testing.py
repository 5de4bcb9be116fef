"""The public test helpers in `tokengate.resource.testing`."""

from __future__ import annotations

import httpx
import pytest

from tokengate.resource.protocol.rfc7662 import ClientCredentials
from tokengate.resource.runtime.client import IntrospectionClient
from tokengate.resource.testing import FakeAuthorizationServer, FakeClock, claims


@pytest.mark.anyio
async def test_fake_server_runs_as_an_asgi_app() -> None:
    """The fake serves metadata and introspection over ASGI (as it would under uvicorn)."""
    fake = FakeAuthorizationServer(issuer="http://127.0.0.1:1")
    token = fake.issue(scope="read", sub="u")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake))
    client = IntrospectionClient(
        ClientCredentials(fake.client_id, fake.client_secret), issuer=fake.issuer, http=http
    )
    assert (await client.introspect(token)).sub == "u"
    fake.revoke(token)
    assert not (await client.introspect(token)).active
    missing = await http.get("http://127.0.0.1:1/nowhere")
    assert missing.status_code == 404
    await http.aclose()


def test_fake_server_expires_tokens_on_its_clock() -> None:
    """Tokens issued with a ttl turn inactive when the fake's clock passes exp."""
    clock = FakeClock()
    fake = FakeAuthorizationServer(clock=clock)
    token = fake.issue(ttl=10)
    auth = (fake.client_id, fake.client_secret)
    with httpx.Client(transport=fake.transport()) as http:
        url = fake.introspection_url
        assert http.post(url, data={"token": token}, auth=auth).json()["active"] is True
        clock.advance(10)
        assert http.post(url, data={"token": token}, auth=auth).json() == {"active": False}
        assert http.post(url, data={"token": token}, auth=("x", "y")).status_code == 401


def test_claims_builder() -> None:
    """`claims()` builds what a parsed RFC 7662 response would give."""
    built = claims(scope="a b", sub="s", exp=5)
    assert built.scopes == {"a", "b"}
    assert (built.sub, built.exp) == ("s", 5)
    assert not claims(active=False).active
