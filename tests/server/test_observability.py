"""Metrics, request ids and access logs of the authorization server."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tokengate.logs import JsonFormatter
from tokengate.server import Settings, create_app
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, Harness

pytestmark = pytest.mark.anyio


async def test_metrics_count_the_flow(harness: Harness) -> None:
    """Issued, introspected (by result), revoked and failed-auth counters move."""
    client = await harness.register()
    rs = await harness.register(introspect=True)
    token = await harness.issue(client)
    await harness.introspect(rs, token)
    await harness.introspect(rs, token)
    await harness.http.post("/oauth2/revoke", data={"token": token}, headers=client.basic())
    await harness.introspect(rs, token)
    await harness.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("tgc_nobody", "x")
    )
    text = (await harness.http.get("/metrics")).text
    assert "tokengate_tokens_issued_total 1.0" in text
    assert 'tokengate_introspection_requests_total{result="active"} 2.0' in text
    assert 'tokengate_introspection_requests_total{result="inactive"} 1.0' in text
    assert "tokengate_revocations_total 1.0" in text
    assert 'tokengate_client_auth_failures_total{endpoint="token"} 1.0' in text
    assert 'tokengate_token_cache_lookups_total{result="hit"}' in text
    assert 'tokengate_http_request_duration_seconds_count{endpoint="introspect"} 3.0' in text
    assert token not in text
    assert client.secret not in text


async def test_request_id_echoed_or_minted(harness: Harness) -> None:
    """A well-formed X-Request-Id is echoed; a malformed one is replaced; without the access
    log (the default) none is minted for a request that sent none (it would name no log line)."""
    good = await harness.http.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert good.headers["x-request-id"] == "abc-123"
    bad = await harness.http.get("/healthz", headers={"X-Request-Id": "a\tb c"})
    assert bad.headers["x-request-id"] != "a\tb c"
    assert bad.headers["x-request-id"]
    assert "x-request-id" not in (await harness.http.get("/healthz")).headers


async def test_request_id_minted_when_access_log_is_on() -> None:
    """With the access log on, every response carries an id that its log line also carries."""
    app = create_app(Settings(issuer=ISSUER, access_log=True), MemoryStore())
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        first = (await http.get("/healthz")).headers["x-request-id"]
        second = (await http.get("/healthz")).headers["x-request-id"]
    await app.shutdown()
    assert first
    assert second
    assert first != second


async def test_access_log_has_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """JSON access lines carry method/path/status/latency/id, never the token or secret."""
    store = MemoryStore()
    app = create_app(Settings(issuer=ISSUER, access_log=True), store)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        harness = Harness(store, None, http)  # type: ignore[arg-type]
        client = await harness.register()
        with caplog.at_level(logging.INFO, logger="tokengate.access"):
            token = await harness.issue(client)
    await app.shutdown()
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "tokengate.access"]
    assert lines
    record = json.loads(lines[-1])
    assert record["path"] == "/oauth2/token"
    assert record["status"] == 200
    assert "duration_ms" in record
    assert record["request_id"]
    assert token not in "".join(lines)
    assert client.secret not in "".join(lines)
