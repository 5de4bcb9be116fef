"""DPoP-bound tokens at the decision service (RFC 9449 §7): the proof checked for the original
request, rebuilt from what each proxy sends (`/decide`: X-Original-* or X-Forwarded-Method/Uri
with X-Forwarded-Proto/Host; `/envoy/...`: the path, Host and X-Forwarded-Proto)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.dpop import ALGS
from tokengate.authz import AuthzSettings, create_authz
from tokengate.gateway.settings import build_policy
from tokengate.resource.protocol.dpop import ProofPolicy
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import DPoPKey, static_validator

pytestmark = pytest.mark.anyio
KEY = DPoPKey()
BOUND = "bound-token"
ORIGINAL = "https://api.example/auth-api/items"


@pytest.fixture
def anyio_backend() -> str:
    """The runtime is asyncio."""
    return "asyncio"


def _validator(**settings: object) -> Validator:
    tokens = {BOUND: KEY.bound(scope="read", sub="alice"), "plain": {"active": True}}
    return static_validator(tokens, **settings)


async def _service(validator: Validator) -> AsyncIterator[httpx.AsyncClient]:
    app = create_authz(AuthzSettings(policy=build_policy(["/auth-api/**"])), validator)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authz:9000") as client:
        yield client
    await validator.aclose()


@pytest.fixture
async def authz() -> AsyncIterator[httpx.AsyncClient]:
    """The service; origins from the proxy's headers."""
    async for client in _service(_validator()):
        yield client


@pytest.fixture
async def pinned() -> AsyncIterator[httpx.AsyncClient]:
    """The service with its one public origin configured."""
    policy = ProofPolicy(origins=("https://api.example",))
    async for client in _service(_validator(dpop=policy)):
        yield client


def _nginx(method: str = "POST", uri: str = "/auth-api/items?x=1") -> dict[str, str]:
    return {
        "X-Original-Method": method,
        "X-Original-URI": uri,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example",
    }


def _proof(url: str = ORIGINAL, method: str = "POST") -> dict[str, str]:
    return {"Authorization": f"DPoP {BOUND}", "DPoP": KEY.proof(method, url, token=BOUND)}


async def test_decide_checks_the_proof_for_the_original_request(authz: httpx.AsyncClient) -> None:
    """nginx: method and target from X-Original-*, origin from X-Forwarded-Proto/-Host."""
    answer = await authz.get("/decide", headers={**_nginx(), **_proof()})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-auth-subject"] == "alice"


async def test_traefik_and_caddy_headers_work_alike(authz: httpx.AsyncClient) -> None:
    """X-Forwarded-Method/Uri describe the original request just as well."""
    headers = {
        "X-Forwarded-Method": "POST",
        "X-Forwarded-Uri": "/auth-api/items",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example",
        **_proof(),
    }
    assert (await authz.get("/decide", headers=headers)).status_code == 200


async def test_envoy_takes_the_host_header(authz: httpx.AsyncClient) -> None:
    """Envoy keeps the original Host and sends the original method and path."""
    headers = {"Host": "api.example", "X-Forwarded-Proto": "https", **_proof()}
    answer = await authz.post("/envoy/auth-api/items", headers=headers)
    assert answer.status_code == 200, answer.text


async def test_a_replayed_proof_is_refused(authz: httpx.AsyncClient) -> None:
    """The same proof twice: the second is invalid_dpop_proof with the DPoP challenge."""
    headers = {**_nginx(), **_proof()}
    assert (await authz.get("/decide", headers=headers)).status_code == 200
    again = await authz.get("/decide", headers=headers)
    assert again.status_code == 401
    assert again.headers["www-authenticate"].startswith(
        'DPoP realm="tokengate", error="invalid_dpop_proof"'
    )
    assert f'algs="{ALGS}"' in again.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param(
            {**_nginx(), "Authorization": f"Bearer {BOUND}"}, "invalid_token", id="bound-as-bearer"
        ),
        pytest.param(
            {**_nginx(), **_proof(url="https://api.example/auth-api/other")},
            "invalid_dpop_proof",
            id="proof-for-another-url",
        ),
        pytest.param(
            {**_nginx(), **_proof(url="https://evil.example/auth-api/items")},
            "invalid_dpop_proof",
            id="proof-for-another-host",
        ),
        pytest.param(
            {**_nginx(method="GET"), **_proof()}, "invalid_dpop_proof", id="another-method"
        ),
        pytest.param(
            {"X-Original-Method": "POST", "X-Original-URI": "/auth-api/items", **_proof()},
            "invalid_dpop_proof",
            id="no-forwarded-origin-fails-closed",
        ),
        pytest.param(
            {**_nginx(), "X-Forwarded-Host": "a.example", **_proof()},
            "invalid_dpop_proof",
            id="forwarded-host-differs",
        ),
    ],
)
async def test_refusals(authz: httpx.AsyncClient, headers: dict[str, str], error: str) -> None:
    """What the proof does not cover, or an origin that cannot be told, is refused (401)."""
    answer = await authz.get("/decide", headers=headers)
    assert answer.status_code == 401
    assert f'error="{error}"' in answer.headers["www-authenticate"]


async def test_repeated_forwarded_headers_fail_closed(authz: httpx.AsyncClient) -> None:
    """Two X-Forwarded-Host lines leave the origin unknown: refused, never guessed."""
    headers = [*_nginx().items(), ("X-Forwarded-Host", "api.example"), *_proof().items()]
    answer = await authz.get("/decide", headers=headers)
    assert answer.status_code == 401


async def test_a_pinned_origin_needs_no_forwarded_headers(pinned: httpx.AsyncClient) -> None:
    """With one origin configured, a proxy naming none is checked against it; another is not."""
    headers = {"X-Original-Method": "POST", "X-Original-URI": "/auth-api/items", **_proof()}
    assert (await pinned.get("/decide", headers=headers)).status_code == 200
    spoofed = {**_nginx(), "X-Forwarded-Host": "evil.example", **_proof()}
    assert (await pinned.get("/decide", headers=spoofed)).status_code == 401
