"""The example resource server app and its click command, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from tests.support.asgi import lifespan
from tokengate.cli import example_rs
from tokengate.resource import ValidatorSettings, create_validator
from tokengate.resource.example import create_example_app
from tokengate.resource.testing import FakeAuthorizationServer

ORIGIN = "https://spa.example"


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """The authorization server behind the example app."""
    return FakeAuthorizationServer()


@pytest.fixture
async def client(fake: FakeAuthorizationServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the example app, wired to the fake authorization server."""
    settings = ValidatorSettings(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        issuer=fake.issuer,
        revocation_events=False,  # the fake serves no events (see test_example_events)
    )
    validator = create_validator(settings, transport=fake.transport())
    app = create_example_app(validator, cors_origins=[ORIGIN])
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
            yield http


@pytest.mark.anyio
async def test_routes_and_scopes(client: httpx.AsyncClient, fake: FakeAuthorizationServer) -> None:
    """hello needs read, items needs write, me echoes claims, ping is public."""
    reader = {"X-Access-Token": fake.issue(scope="read", sub="alice")}
    writer = {"X-Access-Token": fake.issue(scope="write", sub="bob")}
    assert (await client.get("/public/ping")).json() == {"status": "ok"}
    assert (await client.get("/auth-api/hello", headers=reader)).json() == {
        "message": "hello, alice"
    }
    assert (await client.get("/auth-api/hello", headers=writer)).status_code == 403
    created = await client.post("/auth-api/items", headers=writer, json={"name": "x"})
    assert (created.status_code, created.json()) == (201, {"created": {"name": "x"}, "by": "bob"})
    assert (await client.post("/auth-api/items", headers=reader, json={})).status_code == 403
    bad = await client.post("/auth-api/items", headers=writer, content=b"{")
    assert bad.status_code == 400
    me = (await client.get("/auth-api/me", headers=reader)).json()
    assert me["sub"] == "alice"
    assert me["scope"] == "read"
    assert me["active"] is True
    assert (await client.get("/auth-api/me")).status_code == 401
    assert fake.metadata_calls == 1  # discovered once, at startup


@pytest.mark.anyio
async def test_head_needs_the_get_scope(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """HEAD /auth-api/hello is served by the GET route, so it needs `read` too."""
    writer = {"X-Access-Token": fake.issue(scope="write")}
    assert (await client.head("/auth-api/hello", headers=writer)).status_code == 403


@pytest.mark.anyio
async def test_cors_preflight_needs_no_token(client: httpx.AsyncClient) -> None:
    """Preflights are answered by CORS; refusals carry CORS headers a browser can read."""
    preflight = await client.options(
        "/auth-api/hello",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-access-token",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    refused = await client.get("/auth-api/hello", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert "www-authenticate" in refused.headers["access-control-expose-headers"].lower()
    other = await client.get("/public/ping", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.anyio
async def test_no_cookies_or_sessions(
    client: httpx.AsyncClient, fake: FakeAuthorizationServer
) -> None:
    """Nothing sets a cookie, with or without a token."""
    token = {"X-Access-Token": fake.issue(scope="read")}
    for response in (
        await client.get("/auth-api/hello", headers=token),
        await client.get("/auth-api/hello"),
        await client.get("/public/ping"),
    ):
        assert "set-cookie" not in response.headers


@pytest.mark.anyio
async def test_starts_while_the_authorization_server_is_down(
    fake: FakeAuthorizationServer,
) -> None:
    """Discovery failure at startup is logged; requests get 503, then work once it is back."""
    fake.failure = "down"
    settings = ValidatorSettings(
        client_id=fake.client_id, client_secret=fake.client_secret, issuer=fake.issuer
    )  # revocation events on (the default): their failing subscription must not matter
    validator = create_validator(settings, transport=fake.transport())
    app = create_example_app(validator)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
            token = {"X-Access-Token": fake.issue(scope="read")}
            assert (await http.get("/auth-api/hello", headers=token)).status_code == 503
            fake.failure = None
            assert (await http.get("/auth-api/hello", headers=token)).status_code == 200


def _invoke(monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]) -> Any:
    captured: dict[str, Any] = {}

    def fake_run(server: uvicorn.Server, sockets: Any = None) -> None:
        config = server.config
        captured["app"] = config.app
        captured["options"] = {
            "host": config.host,
            "port": config.port,
            "log_level": config.log_level,
            "access_log": config.access_log,
            "log_config": config.log_config,
        }

    def validator(settings: ValidatorSettings, **options: Any) -> Any:
        captured["settings"] = settings
        return create_validator(settings, **options)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr("tokengate.cli.validation.create_validator", validator)
    result = CliRunner().invoke(example_rs.example_resource_server, args, env=env)
    return result, captured


def test_cli_reads_options_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option can come from TOKENGATE_RS_*; the app is handed to uvicorn."""
    env = {
        "TOKENGATE_RS_INTROSPECTION_URL": "http://127.0.0.1:9/oauth2/introspect",
        "TOKENGATE_RS_CLIENT_ID": "rs",
        "TOKENGATE_RS_CLIENT_SECRET": "secret",
        "TOKENGATE_RS_PORT": "8123",
        "TOKENGATE_RS_CACHE_MAX_TTL": "12",
        "TOKENGATE_RS_CORS_ORIGIN": "https://a.example https://b.example",
        "TOKENGATE_RS_INTROSPECTION_TIMEOUT": "1.5",
        "TOKENGATE_RS_CIRCUIT_THRESHOLD": "3",
        "TOKENGATE_RS_CIRCUIT_COOLDOWN": "2",
        "TOKENGATE_RS_ACCESS_LOG": "false",
    }
    result, captured = _invoke(monkeypatch, [], env)
    assert result.exit_code == 0, result.output
    assert captured["options"] == {
        "host": "127.0.0.1",
        "port": 8123,
        "log_level": "info",
        "access_log": False,
        "log_config": None,
    }
    settings = captured["settings"]
    assert (settings.timeouts.total, settings.timeouts.read, settings.timeouts.connect) == (
        1.5,
        1.5,
        1.0,
    )
    assert (settings.failure_threshold, settings.cooldown) == (3, 2.0)
    assert "secret" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--client-id", "a", "--client-secret", "b"], "exactly one", id="neither"),
        pytest.param(
            [
                "--client-id",
                "a",
                "--client-secret",
                "b",
                "--issuer",
                "https://a",
                "--introspection-url",
                "https://a/i",
            ],
            "exactly one",
            id="both",
        ),
        pytest.param(
            [
                "--client-id",
                "a",
                "--client-secret",
                "b",
                "--introspection-url",
                "http://x.example/i",
            ],
            "loopback",
            id="insecure-url",
        ),
        pytest.param(["--issuer", "https://a"], "client-id", id="no-credentials"),
    ],
)
def test_cli_usage_errors(monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    """Bad combinations are usage errors, not tracebacks."""
    result, captured = _invoke(monkeypatch, args, {})
    assert result.exit_code == 2
    assert message in result.output
    assert "app" not in captured  # never served
