"""The FastAPI-style `require_scopes` dependency, exercised with Starlette alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.adapters.fastapi import (
    VALIDATOR_STATE_KEY,
    BearerHTTPException,
    bearer_exception_handler,
    require_scopes,
)
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.testing import claims, static_validator

Dependency = Callable[[HTTPConnection], Awaitable[TokenClaims]]


def test_module_does_not_import_fastapi() -> None:
    """Importing the dependency module never pulls FastAPI in."""
    code = "import sys, tokengate.resource.adapters.fastapi; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _app(dependency: Dependency, *, with_middleware: bool, handler: bool = True) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        found = await dependency(request)  # what FastAPI's Depends() would do
        return JSONResponse({"sub": found.sub})

    validator = static_validator({"r": claims(scope="read", sub="r"), "w": claims(scope="write")})
    handlers = {BearerHTTPException: bearer_exception_handler} if handler else {}
    app = Starlette(routes=[Route("/x", endpoint)], exception_handlers=handlers)
    if with_middleware:
        app.add_middleware(TokenGateMiddleware, validator=validator)
    else:
        setattr(app.state, VALIDATOR_STATE_KEY, validator)
    return app


async def _get(app: Starlette, token: str | None) -> httpx.Response:
    headers = {"X-Access-Token": token} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rs") as http:
        return await http.get("/x", headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize("with_middleware", [True, False], ids=["after-middleware", "standalone"])
async def test_grants_and_refuses(with_middleware: bool) -> None:
    """Right scope → claims; wrong scope → 403; no token → 401 (with or without middleware)."""
    app = _app(require_scopes("read"), with_middleware=with_middleware)
    ok = await _get(app, "r")
    assert (ok.status_code, ok.json()) == (200, {"sub": "r"})
    forbidden = await _get(app, "w")
    assert forbidden.status_code == 403
    assert 'scope="read"' in forbidden.headers["www-authenticate"]
    assert forbidden.json()["error"] == "insufficient_scope"
    assert (await _get(app, None)).status_code == 401


@pytest.mark.anyio
async def test_default_handler_still_sends_status_and_challenge() -> None:
    """Without our handler, Starlette's HTTPException handling keeps the RFC 6750 headers."""
    app = _app(require_scopes("read"), with_middleware=False, handler=False)
    response = await _get(app, "w")
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_missing_validator_is_a_configuration_error() -> None:
    """No middleware, no validator argument, no app.state validator → TypeError."""
    app = Starlette()
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "app": app}
    with pytest.raises(TypeError, match="Validator"):
        await require_scopes("read")(Request(scope))


@pytest.mark.anyio
async def test_explicit_validator_argument() -> None:
    """A validator passed to `require_scopes` is used directly."""
    dependency = require_scopes(validator=static_validator({"t": claims(sub="s")}))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-access-token", b"t")]}
    assert (await dependency(Request(scope))).sub == "s"


@pytest.mark.anyio
async def test_a_validator_lookalike_in_app_state_is_refused() -> None:
    """`app.state` holding anything but a `Validator` is a configuration error, not a pass."""

    class Lookalike:
        async def validate(self, token: str, scopes: object = ()) -> TokenClaims:
            return claims(scope="read")

    app = Starlette()
    setattr(app.state, VALIDATOR_STATE_KEY, Lookalike())
    headers = [(b"x-access-token", b"t")]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "app": app}
    with pytest.raises(TypeError, match="Validator"):
        await require_scopes("read")(Request(scope))
