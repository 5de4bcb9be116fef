"""The example resource server: the classic Spring opaque-token setup, as a Starlette app.

`/auth-api/**` needs a valid token (read from the custom header or `Authorization: Bearer`),
everything else is public; CORS comes from configuration; no cookies, sessions, CSRF, form or
basic login. Routes: `GET /auth-api/hello` (scope `read`), `POST /auth-api/items` (scope
`write`), `GET /auth-api/me` (echoes the introspected claims), `GET /public/ping`, and
`GET /public/status` (revocation-event subscription state and cache statistics; no secrets),
`GET /metrics` (the same numbers for Prometheus, `tokengate_rs_*`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.metrics import MetricsApp, metrics_registry
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER
from tokengate.resource.runtime.validator import Validator

REALM = "tokengate-example"


def example_policy() -> Policy:
    """`securityMatcher("/auth-api/**")`, with per-route scopes in front of it."""
    return Policy(
        [
            Rule("/auth-api/hello", methods=["GET"], scopes=["read"]),
            Rule("/auth-api/items", methods=["POST"], scopes=["write"]),
            Rule("/auth-api/**"),
        ]
    )


async def hello(request: Request) -> JSONResponse:
    """GET /auth-api/hello (scope `read`)."""
    return JSONResponse({"message": f"hello, {_caller(request)}"})


async def create_item(request: Request) -> JSONResponse:
    """POST /auth-api/items (scope `write`): echoes the JSON body back as the created item."""
    try:
        item = await request.json()
    except ValueError:
        error = {"error": "invalid_request", "error_description": "body is not JSON"}
        return JSONResponse(error, status_code=400)
    return JSONResponse({"created": item, "by": _caller(request)}, status_code=201)


async def me(request: Request) -> JSONResponse:
    """GET /auth-api/me: the introspected claims of the caller's token."""
    claims: TokenClaims = request.auth
    return JSONResponse(claims.to_dict())


async def ping(request: Request) -> JSONResponse:
    """GET /public/ping: no token needed."""
    return JSONResponse({"status": "ok"})


def status_endpoint(validator: Validator) -> Callable[[Request], Awaitable[JSONResponse]]:
    """GET /public/status: whether revocation events are followed, and the cache's numbers."""

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(validator.status())

    return status


def _caller(request: Request) -> str:
    claims: TokenClaims = request.auth
    return claims.sub or claims.client_id or "anonymous"


def create_example_app(
    validator: Validator,
    *,
    token_header: str = DEFAULT_TOKEN_HEADER,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The example app; its `TokenGateMiddleware` starts and closes `validator` with it."""
    routes = [
        Route("/auth-api/hello", hello, methods=["GET"]),
        Route("/auth-api/items", create_item, methods=["POST"]),
        Route("/auth-api/me", me, methods=["GET"]),
        Route("/public/ping", ping, methods=["GET"]),
        Route("/public/status", status_endpoint(validator), methods=["GET"]),
        Route("/metrics", MetricsApp(metrics_registry(validator)), methods=["GET"]),
    ]
    middleware = [
        # Outermost, so preflights are answered without a token and refusals carry CORS headers.
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[token_header, "Authorization", "Content-Type"],
            expose_headers=["WWW-Authenticate", "Retry-After"],
            allow_credentials=False,
        ),
        Middleware(
            TokenGateMiddleware,
            validator=validator,
            policy=example_policy(),
            token_header=token_header,
            realm=REALM,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)
