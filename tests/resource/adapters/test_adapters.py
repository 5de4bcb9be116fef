"""What every adapter shares: only the runtime's `Validator` is accepted, only claims pass.

Regression tests for the critical bypass of round 1: the WSGI middleware accepted an async
validator and let every request through on the un-awaited coroutine it returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from unittest.mock import AsyncMock, MagicMock
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tokengate.resource.adapters import validated
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.adapters.fastapi import require_scopes
from tokengate.resource.adapters.wsgi import TokenGateWSGIMiddleware
from tokengate.resource.protocol.claims import INACTIVE, TokenClaims
from tokengate.resource.protocol.errors import InvalidToken
from tokengate.resource.protocol.rfc7662 import HttpResponse
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import HandlerTransport, claims


def wsgi_ok(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A WSGI app that lets everyone in."""
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"in"]


async def asgi_ok(request: object) -> PlainTextResponse:
    """A Starlette endpoint that lets everyone in."""
    return PlainTextResponse("in")


class AsyncLookalike:
    """`validate` is a coroutine function returning active claims with every scope."""

    async def validate(self, token: str, required_scopes: Any = ()) -> TokenClaims:
        return claims(scope="read write admin")


class SyncLookalike:
    """`validate` returns active claims at once: the shape of the deleted `SyncValidator`."""

    def validate(self, token: str, required_scopes: Any = ()) -> TokenClaims:
        return claims(scope="read write admin")


IMPOSTORS = [
    pytest.param(AsyncLookalike(), id="async-validate-returning-claims"),
    pytest.param(SyncLookalike(), id="sync-validate-returning-claims"),
    pytest.param(MagicMock(), id="mock"),
    pytest.param(AsyncMock(), id="async-mock"),
    pytest.param(object(), id="object"),
]
ADAPTERS: list[Any] = [
    pytest.param(lambda v: TokenGateMiddleware(Starlette(), v), id="asgi"),
    pytest.param(lambda v: TokenGateWSGIMiddleware(wsgi_ok, v), id="wsgi"),
    pytest.param(lambda v: require_scopes("read", validator=v), id="fastapi-require_scopes"),
]
Build = Callable[[object], object]


@pytest.mark.parametrize("impostor", IMPOSTORS)
@pytest.mark.parametrize("build", ADAPTERS)
def test_adapters_refuse_a_validator_lookalike(build: Build, impostor: object) -> None:
    """Anything but a `Validator` is a TypeError when the adapter is built, not a request."""
    with pytest.raises(TypeError, match="Validator"):
        build(impostor)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda v: TokenGateMiddleware(Starlette(), v), id="asgi"),
        pytest.param(lambda v: TokenGateWSGIMiddleware(wsgi_ok, v), id="wsgi"),
    ],
)
def test_middleware_refuses_none(build: Build) -> None:
    """A middleware without a validator is not built (FastAPI's None means `app.state`)."""
    with pytest.raises(TypeError, match="Validator"):
        build(None)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda v: TokenGateMiddleware(Starlette(), v), id="asgi"),
        pytest.param(lambda v: require_scopes("read", validator=v), id="fastapi-require_scopes"),
    ],
)
def test_adapters_refuse_a_mock_with_the_validator_spec(build: Build) -> None:
    """Even a mock that claims `Validator` as its class is refused when built."""
    with pytest.raises(TypeError, match="Validator"):
        build(MagicMock(spec=Validator))


class _Careless(Validator):
    """A `Validator` subclass whose `validate` returns no claims at all."""

    async def validate(self, token: str, required_scopes: Iterable[str] = ()) -> Any:
        return None


@pytest.mark.anyio
async def test_a_validator_returning_no_claims_lets_nothing_through() -> None:
    """Defence in depth: a subclass that returns None instead of claims still gets a 401."""
    settings = ValidatorSettings(
        client_id="rs", client_secret="s", issuer="https://as.example", revocation_events=False
    )
    careless = _Careless(
        settings, transport=HandlerTransport(lambda request: HttpResponse(500, b""))
    )
    app = TokenGateMiddleware(Starlette(routes=[Route("/x", asgi_ok)]), careless)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs") as c:
        response = await c.get("/x", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401


def _coroutine() -> Any:
    async def claims_later() -> TokenClaims:
        return claims()

    return claims_later()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param({"active": True, "scope": "admin"}, id="dict"),
        pytest.param(INACTIVE, id="inactive-claims"),
        pytest.param(MagicMock(), id="mock"),
        pytest.param(True, id="true"),
    ],
)
def test_validated_lets_only_active_claims_through(value: object) -> None:
    """Whatever is not active `TokenClaims` is a 401, never a pass."""
    with pytest.raises(InvalidToken):
        validated(value)


def test_validated_refuses_an_unawaited_coroutine() -> None:
    """The round 1 bypass itself: a coroutine (truthy, never awaited) is not claims."""
    coroutine = _coroutine()
    try:
        with pytest.raises(InvalidToken):
            validated(coroutine)
    finally:
        coroutine.close()


def test_validated_returns_active_claims_as_they_are() -> None:
    """Active claims pass unchanged."""
    active = claims(scope="read")
    assert validated(active) is active
