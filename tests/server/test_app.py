"""Metadata, health, routing and error containment."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import httpx
import pytest

from tokengate.core.wire import METADATA_PATH
from tokengate.server import Settings, create_app
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness

pytestmark = pytest.mark.anyio


async def test_metadata(harness: Harness) -> None:
    """RFC 8414 §2: issuer, endpoints, grant types, scopes, auth methods and their algorithms."""
    await harness.register("read write")
    await harness.register("admin")
    body = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert body["issuer"] == ISSUER
    assert body["token_endpoint"] == ISSUER + "/oauth2/token"
    assert body["introspection_endpoint"] == ISSUER + "/oauth2/introspect"
    assert body["revocation_endpoint"] == ISSUER + "/oauth2/revoke"
    assert body["grant_types_supported"] == ["client_credentials"]
    assert body["scopes_supported"] == ["admin", "read", "write"]
    for endpoint in ("token", "introspection", "revocation"):
        assert body[f"{endpoint}_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]
        algs = body[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert algs == ["RS256", "PS256", "ES256", "EdDSA"]


async def test_health_and_head(harness: Harness) -> None:
    """GET and HEAD /healthz answer 200."""
    assert (await harness.http.get("/healthz")).status_code == 200
    head = await harness.http.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""


async def test_unknown_path(harness: Harness) -> None:
    """Unknown paths are a JSON 404."""
    response = await harness.http.get("/nope")
    assert response.status_code == 404


class BrokenStore(MemoryStore):
    """A store whose lookups fail in a chosen way."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    async def get_client(self, client_id: str) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        pytest.param(RuntimeError("secret detail /etc/passwd"), 500, "server_error", id="bug"),
        pytest.param(
            sqlite3.OperationalError("database is locked"),
            503,
            "temporarily_unavailable",
            id="storage-outage",
        ),
    ],
)
async def test_unexpected_errors_are_contained(exc: Exception, status: int, error: str) -> None:
    """Internal failures reveal nothing; storage outages are 503 with Retry-After."""
    app = create_app(Settings(issuer=ISSUER), BrokenStore(exc))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("tgc_x", "secret"),
        )
    assert response.status_code == status
    assert response.json() == {
        "error": error,
        **({"error_description": "storage unavailable"} if status == 503 else {}),
    }
    assert "passwd" not in response.text
    if status == 503:
        assert response.headers["retry-after"] == "2"


async def test_slow_body_times_out() -> None:
    """A client that never finishes its body gets 400 after the body timeout, not a hang."""
    store = MemoryStore()
    app = create_app(Settings(issuer=ISSUER, body_timeout=0.2), store)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await asyncio.sleep(3600)
        return {}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/oauth2/token",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    started = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), timeout=2)
    waited = time.monotonic() - started
    assert sent[0]["status"] == 400
    assert b"not received in time" in sent[1]["body"]  # type: ignore[operator]
    assert 0.2 <= waited < 0.2 * (1 + 1 / 8) + 0.1  # the timeout, plus at most one sweep


async def test_healthz_names_the_worker_only_under_workers(harness: Harness) -> None:
    """Without `Settings.worker` /healthz says only "ok"; with it, the index and the pid."""
    assert (await harness.http.get("/healthz")).json() == {"status": "ok"}
    app = create_app(Settings(issuer=ISSUER, worker=1), MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        body = (await http.get("/healthz")).json()
    assert body == {"status": "ok", "worker": 1, "pid": os.getpid()}


async def test_a_process_that_is_not_the_purger_never_purges() -> None:
    """`Settings.purger=False` (every worker but worker 0): expired tokens stay for the purger."""
    store = MemoryStore()
    clock = FakeClock()
    app = create_app(Settings(issuer=ISSUER, purge_interval=0.01, purger=False), store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        harness = Harness(store, clock, http)
        await harness.issue(await harness.register(ttl=60))
        clock.now += 61
        await asyncio.sleep(0.2)  # twenty purge intervals
    await app.shutdown()
    assert len(store._tokens) == 1


async def test_expired_tokens_are_purged_in_the_background() -> None:
    """The server deletes expired tokens on its own, every purge interval."""
    store = MemoryStore()
    clock = FakeClock()
    app = create_app(Settings(issuer=ISSUER, purge_interval=0.02), store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        harness = Harness(store, clock, http)
        short = await harness.register(ttl=60)
        await harness.issue(short)
        await harness.issue(short)
        assert len(store._tokens) == 2
        clock.now += 61
        for _ in range(100):
            if not store._tokens:
                break
            await asyncio.sleep(0.01)
    await app.shutdown()
    assert store._tokens == {}


async def test_metadata_revalidates_with_an_etag(harness: Harness) -> None:
    """RFC 9111 §5.2.2.4 no-cache + RFC 9110 §13.1.2: 304 while unchanged, 200 once a new
    client's scope is in (the scope list is read at most once a second)."""
    await harness.register("read")
    first = await harness.http.get(METADATA_PATH)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert tag.startswith('"')
    assert not tag.startswith("W/")
    again = await harness.http.get(METADATA_PATH, headers={"If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    assert "content-length" not in again.headers
    await harness.register("write")
    harness.clock.now += 1
    changed = await harness.http.get(METADATA_PATH, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["scopes_supported"] == ["read", "write"]
    assert changed.headers["etag"] != tag


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        pytest.param("*", 304, id="rfc9110-13.1.2-star"),
        pytest.param('"other", {tag}', 304, id="rfc9110-13.1.2-list"),
        pytest.param("W/{tag}", 304, id="rfc9110-13.1.2-weak-comparison"),
        pytest.param('"other"', 200, id="other-tag"),
        pytest.param("{bare}", 200, id="unquoted-is-no-tag"),
    ],
)
async def test_metadata_if_none_match(harness: Harness, if_none_match: str, status: int) -> None:
    """If-None-Match forms: `*`, lists, weak tags match; anything else gets the document."""
    tag = (await harness.http.get(METADATA_PATH)).headers["etag"]
    value = if_none_match.format(tag=tag, bare=tag.strip('"'))
    response = await harness.http.get(METADATA_PATH, headers={"If-None-Match": value})
    assert response.status_code == status


async def test_metadata_if_none_match_repeated(harness: Harness) -> None:
    """RFC 9110 §5.3: two If-None-Match lines are one list, not a 400."""
    tag = (await harness.http.get(METADATA_PATH)).headers["etag"]
    headers = [("If-None-Match", '"other"'), ("If-None-Match", tag)]
    response = await harness.http.get(METADATA_PATH, headers=headers)
    assert response.status_code == 304
