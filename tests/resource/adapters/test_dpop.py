"""DPoP-bound tokens (RFC 9449 §7) through every adapter: ASGI middleware, WSGI middleware and
the FastAPI dependency, each answering the same requests alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.dpop import ALGS
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.adapters.fastapi import (
    BearerHTTPException,
    bearer_exception_handler,
    require_scopes,
)
from tokengate.resource.adapters.wsgi import CLAIMS_ENVIRON_KEY, TokenGateWSGIMiddleware
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import DPoPKey, static_validator

BASE = "http://rs.test"
URL = BASE + "/api/hello"
BOUND = "bound-token"
UNBOUND = "plain-token"
POLICY = Policy([Rule("/api/write", methods=["POST"], scopes=["write"]), Rule("/api/**")])
Request_ = tuple[str, str, dict[str, str]]
Exchange = Callable[[Sequence[Request_]], list[httpx.Response]]
KEY = DPoPKey()


def _validator() -> Validator:
    return static_validator(
        {BOUND: KEY.bound(scope="read", sub="alice"), UNBOUND: {"active": True}}
    )


async def _asgi_endpoint(request: Request) -> JSONResponse:
    claims: TokenClaims = request.auth
    return JSONResponse({"sub": claims.sub, "jkt": claims.jkt})


def _asgi_app(validator: Validator) -> Starlette:
    routes = [Route("/api/{name}", _asgi_endpoint, methods=["GET", "POST"])]
    return Starlette(routes=routes, middleware=[])


def _fastapi_app(validator: Validator) -> Starlette:
    dependency = require_scopes(validator=validator)

    async def endpoint(request: Request) -> JSONResponse:
        claims = await dependency(request)  # what FastAPI's Depends() would do
        return JSONResponse({"sub": claims.sub, "jkt": claims.jkt})

    handlers = {BearerHTTPException: bearer_exception_handler}
    routes = [Route("/api/{name}", endpoint, methods=["GET", "POST"])]
    return Starlette(routes=routes, exception_handlers=handlers)


def _wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    claims = environ[CLAIMS_ENVIRON_KEY]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": claims.sub, "jkt": claims.jkt}).encode()]


def _over_asgi(app: Starlette, requests: Sequence[Request_]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return [await client.request(m, path, headers=h) for m, path, h in requests]

    return asyncio.run(run())


def _exchange(kind: str) -> Exchange:
    def exchange(requests: Sequence[Request_]) -> list[httpx.Response]:
        validator = _validator()
        if kind == "asgi":
            app = TokenGateMiddleware(_asgi_app(validator), validator, policy=POLICY)
            return _over_asgi(app, requests)  # type: ignore[arg-type]
        if kind == "fastapi":
            return _over_asgi(_fastapi_app(validator), requests)
        wsgi = TokenGateWSGIMiddleware(_wsgi_app, validator, policy=POLICY)
        try:
            with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url=BASE) as client:
                return [client.request(m, path, headers=h) for m, path, h in requests]
        finally:
            wsgi.close()

    return exchange


@pytest.fixture(params=["asgi", "wsgi", "fastapi"])
def exchange(request: pytest.FixtureRequest) -> Exchange:
    """Requests sent, in order, through one freshly built adapter."""
    return _exchange(request.param)


def _dpop(url: str = URL, method: str = "GET", token: str = BOUND) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": KEY.proof(method, url, token=token)}


def _challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


def test_a_bound_token_with_its_proof_passes(exchange: Exchange) -> None:
    """RFC 9449 §7.1: `Authorization: DPoP` and a proof for this request: 200, claims reach the
    app; the custom header with a proof works the same."""
    custom = {"X-Access-Token": BOUND, "DPoP": KEY.proof("GET", URL, token=BOUND)}
    answers = exchange([("GET", "/api/hello", _dpop()), ("GET", "/api/hello", custom)])
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"sub": "alice", "jkt": KEY.jkt}


def test_a_replayed_proof_is_refused(exchange: Exchange) -> None:
    """RFC 9449 §11.1: the same proof again is invalid_dpop_proof, in the DPoP challenge."""
    headers = _dpop()
    first, again = exchange([("GET", "/api/hello", headers), ("GET", "/api/hello", headers)])
    assert first.status_code == 200
    assert again.status_code == 401
    assert _challenge(again).startswith('DPoP realm="tokengate", error="invalid_dpop_proof"')
    assert f'algs="{ALGS}"' in _challenge(again)
    assert again.json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param(
            lambda: {"Authorization": f"Bearer {BOUND}"},
            "invalid_token",
            id="rfc9449-7.2-bound-as-bearer",
        ),
        pytest.param(
            lambda: {"X-Access-Token": BOUND}, "invalid_token", id="bound-in-custom-header"
        ),
        pytest.param(
            lambda: {"Authorization": f"DPoP {BOUND}"},
            "invalid_dpop_proof",
            id="dpop-without-proof",
        ),
        pytest.param(
            lambda: _dpop(url=BASE + "/api/other"), "invalid_dpop_proof", id="proof-other-url"
        ),
        pytest.param(
            lambda: _dpop(url="https://rs.test/api/hello"), "invalid_dpop_proof", id="scheme"
        ),
        pytest.param(lambda: _dpop(method="POST"), "invalid_dpop_proof", id="proof-other-method"),
        pytest.param(lambda: _dpop(token=UNBOUND), "invalid_token", id="rfc9449-7.1-unbound-token"),
        pytest.param(
            lambda: {
                "Authorization": f"Bearer {UNBOUND}",
                "DPoP": KEY.proof("GET", URL, token=UNBOUND),
            },
            "invalid_token",
            id="proof-beside-bearer",
        ),
    ],
)
def test_refusals_are_401_with_both_challenges(
    exchange: Exchange, headers: Callable[[], dict[str, str]], error: str
) -> None:
    """A bound token without its proof, or a proof that does not fit, is a 401 offering both
    schemes, the error code in the one the request used. The proofs are made when the test runs,
    not when it is collected: a proof older than the accepted age would be refused for that."""
    (answer,) = exchange([("GET", "/api/hello", headers())])
    assert answer.status_code == 401
    assert answer.json()["error"] == error
    challenge = _challenge(answer)
    assert f'error="{error}"' in challenge
    assert challenge.count("Bearer realm=") == 1
    assert challenge.count(f'algs="{ALGS}"') == 1


def test_two_proof_headers_are_refused() -> None:
    """RFC 9449 §4.3 check 1: more than one DPoP header (raw ASGI, where both survive)."""
    validator = _validator()
    app = TokenGateMiddleware(_asgi_app(validator), validator, policy=POLICY)
    proof = KEY.proof("GET", URL, token=BOUND)
    headers = [("Authorization", f"DPoP {BOUND}"), ("DPoP", proof), ("DPoP", proof)]

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await client.get("/api/hello", headers=headers)

    answer = asyncio.run(run())
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_dpop_proof"


def test_an_unbound_bearer_token_still_passes(exchange: Exchange) -> None:
    """The bearer path is unchanged for unbound tokens."""
    (answer,) = exchange([("GET", "/api/hello", {"Authorization": f"Bearer {UNBOUND}"})])
    assert answer.status_code == 200


def test_a_scope_missing_behind_the_middleware_is_answered_in_the_dpop_scheme() -> None:
    """FastAPI's dependency behind the middleware: a DPoP caller lacking a scope gets its 403
    in the `DPoP` challenge."""
    validator = _validator()
    dependency = require_scopes("write")

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"sub": (await dependency(request)).sub})

    handlers = {BearerHTTPException: bearer_exception_handler}
    inner = Starlette(routes=[Route("/api/hello", endpoint)], exception_handlers=handlers)
    app = TokenGateMiddleware(inner, validator, policy=POLICY)
    (answer,) = _over_asgi(app, [("GET", "/api/hello", _dpop())])  # type: ignore[arg-type]
    assert answer.status_code == 403
    assert answer.headers["www-authenticate"].startswith(
        'DPoP realm="tokengate", error="insufficient_scope"'
    )
