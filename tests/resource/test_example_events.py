"""Revocation events in the example resource server: lifespan, status route, CLI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from tests.support.asgi import lifespan
from tests.support.fake_events import FakeEventServer, revocation_frame, sync_frame, until
from tokengate.cli import example_rs
from tokengate.core.credentials import hash_value
from tokengate.resource import ValidatorSettings, create_validator
from tokengate.resource.example import create_example_app
from tokengate.resource.testing import FakeAuthorizationServer

pytestmark = pytest.mark.anyio


async def test_status_with_events_off() -> None:
    """`/public/status` says events are off and shows the cache's numbers."""
    fake = FakeAuthorizationServer()
    settings = ValidatorSettings(
        fake.client_id,
        fake.client_secret,
        introspection_url=fake.introspection_url,
        revocation_events=False,
    )
    app = create_example_app(create_validator(settings, transport=fake.transport()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs") as c:
        status = (await c.get("/public/status")).json()
    assert status["revocation_events"] == {"state": "off"}
    assert status["cache"] == {"entries": 0, "ttl_cap": None}
    assert status["stats"]["introspection_calls"] == 0


async def test_lifespan_runs_the_subscriber_and_status_shows_it() -> None:
    """Started with the app: live after sync (uncapped), evicts on events, stopped at shutdown."""
    fake = FakeAuthorizationServer()
    events = FakeEventServer(issuer="https://as.example", other=fake.transport())
    settings = ValidatorSettings(
        fake.client_id, fake.client_secret, introspection_url=fake.introspection_url, max_ttl=3600
    )
    validator = create_validator(settings, transport=events)
    subscriber = validator.subscriber
    assert subscriber is not None
    assert subscriber.endpoint == "https://as.example/oauth2/events"
    assert subscriber.state == "stopped"  # until the app starts
    app = create_example_app(validator)
    token = fake.issue(scope="read")
    headers = {"X-Access-Token": token}
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rs") as client:
            await until(lambda: len(events.connections) == 1)
            assert (await client.get("/public/status")).json()["cache"]["ttl_cap"] == 5.0
            events.connections[0].send(sync_frame(0))
            await until(lambda: subscriber.state == "live")
            status = (await client.get("/public/status")).json()
            assert status["revocation_events"]["state"] == "live"
            assert status["cache"]["ttl_cap"] is None
            assert status["stats"]["revocation_stream_state"] == 3
            assert (await client.get("/auth-api/hello", headers=headers)).status_code == 200
            fake.revoke(token)
            assert (await client.get("/auth-api/hello", headers=headers)).status_code == 200
            events.connections[0].send(revocation_frame(1, token_hash=hash_value(token)))
            await until(lambda: len(validator.cache) == 0)
            assert (await client.get("/auth-api/hello", headers=headers)).status_code == 401
    assert subscriber.state == "stopped"
    assert events.connections[0].closed


def _app_from_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, sockets=None: captured.update(app=server.config.app)
    )
    env = {
        "TOKENGATE_RS_INTROSPECTION_URL": "http://127.0.0.1:9/oauth2/introspect",
        "TOKENGATE_RS_CLIENT_ID": "rs",
        "TOKENGATE_RS_CLIENT_SECRET": "secret",
    }
    result = CliRunner().invoke(example_rs.example_resource_server, list(args), env=env)
    assert result.exit_code == 0, result.output
    return captured["app"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((), {"state": "stopped", "outage_ttl": 5.0}, id="on-by-default"),
        pytest.param(("--outage-cache-ttl", "2.5"), {"outage_ttl": 2.5}, id="outage-ttl"),
        pytest.param(("--no-revocation-events",), {"state": "off"}, id="switched-off"),
    ],
)
async def test_cli_options(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], expected: dict[str, Any]
) -> None:
    """`--revocation-events/--no-revocation-events` and `--outage-cache-ttl` reach the app."""
    app = _app_from_cli(monkeypatch, *args)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs") as c:
        events = (await c.get("/public/status")).json()["revocation_events"]
    assert expected.items() <= events.items()


async def test_cli_environment_switches_events_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOKENGATE_RS_REVOCATION_EVENTS=false turns the subscription off."""
    monkeypatch.setenv("TOKENGATE_RS_REVOCATION_EVENTS", "false")
    app = _app_from_cli(monkeypatch)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs") as c:
        events = (await c.get("/public/status")).json()["revocation_events"]
    assert events == {"state": "off"}
