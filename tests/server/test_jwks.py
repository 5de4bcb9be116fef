"""Fetching a private_key_jwt client's `jwks_uri`: limits, failures, caching, single flight."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from joserfc.jwk import ECKey

from tokengate.core.client_assertion import MAX_JWKS_BYTES, AssertionRefused
from tokengate.core.models import Client
from tokengate.server.jwks import CACHE_TTL, JwksResolver

from .conftest import FakeClock

pytestmark = pytest.mark.anyio
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
CLIENT = Client("tgc_x", "x", "h", frozenset(), auth_method="private_key_jwt",
                jwks_uri="https://client.example/jwks")  # fmt: skip
GOOD = {"keys": [KEY.as_dict(private=False)]}


def resolver(answer: httpx.Response, calls: list[httpx.Request], clock: FakeClock) -> JwksResolver:
    """A resolver whose every fetch gets `answer`, recording the requests."""

    async def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await asyncio.sleep(0.01)  # long enough for concurrent callers to overlap
        return answer

    return JwksResolver(httpx.MockTransport(handle), clock=clock)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(httpx.Response(500, json=GOOD), "status 500", id="server-error"),
        pytest.param(
            httpx.Response(302, headers={"location": "http://169.254.169.254/"}),
            "status 302",
            id="redirect-not-followed",
        ),
        pytest.param(
            httpx.Response(200, content=b"x" * (MAX_JWKS_BYTES + 1)), "larger", id="oversized"
        ),
        pytest.param(httpx.Response(200, content=b"<html>"), "usable", id="not-json"),
        pytest.param(httpx.Response(200, content=b"[" * 5000), "usable", id="json-nested-deep"),
        pytest.param(
            httpx.Response(200, json={"keys": [KEY.as_dict(private=True)]}),
            "public",
            id="private-key-served",
        ),
    ],
)
async def test_unusable_answers_refuse_the_assertion(answer: httpx.Response, reason: str) -> None:
    """Whatever goes wrong, no key is known, so the assertion is refused (fail closed)."""
    keys = resolver(answer, [], FakeClock())
    with pytest.raises(AssertionRefused, match=reason):
        await keys.keys(CLIENT)
    await keys.close()


async def test_fetch_is_cached_and_shared() -> None:
    """Concurrent callers share one request; the set is reused until CACHE_TTL."""
    calls: list[httpx.Request] = []
    clock = FakeClock()
    keys = resolver(httpx.Response(200, json=GOOD), calls, clock)
    found = await asyncio.gather(*(keys.keys(CLIENT) for _ in range(5)))
    assert len(calls) == 1
    assert found[0].get_by_kid("k1") is not None
    await keys.keys(CLIENT)
    assert len(calls) == 1
    clock.now += CACHE_TTL
    await keys.keys(CLIENT)
    assert len(calls) == 2
    await keys.close()
