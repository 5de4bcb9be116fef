"""FastAPI dependency `require_scopes(...)`, written without importing FastAPI.

FastAPI injects Starlette's `HTTPConnection` into dependencies, so Starlette is all this needs::

    app.add_exception_handler(BearerHTTPException, bearer_exception_handler)  # optional

    @app.get("/items")
    async def items(claims: TokenClaims = Depends(require_scopes("read"))): ...

The dependency reuses claims that `TokenGateMiddleware` put in `scope["auth"]`; without the
middleware it validates the token itself with the given validator (or the one stored as
`app.state.tokengate_validator`). Refusals raise `BearerHTTPException`: a Starlette
`HTTPException` with the right status, `WWW-Authenticate` and `Retry-After`, so even FastAPI's
default handler answers correctly; the handler above also renders the RFC 6750 JSON body.

This module deliberately avoids `from __future__ import annotations`: FastAPI reads the
dependency's parameter annotation at runtime.
"""

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from tokengate.resource.adapters import require_validator, scope_url, validated
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.decision import check_scopes
from tokengate.resource.protocol.dpop import DEFAULT_PROOF_POLICY
from tokengate.resource.protocol.errors import DPOP, BearerError
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER, resolve_credentials
from tokengate.resource.protocol.responses import DEFAULT_REALM, render_error
from tokengate.resource.runtime.validator import Validator

VALIDATOR_STATE_KEY = "tokengate_validator"
_FORWARDED_HEADERS = ("www-authenticate", "retry-after")


class BearerHTTPException(HTTPException):
    """A `BearerError` as a Starlette/FastAPI `HTTPException` carrying the right headers."""

    def __init__(
        self, error: BearerError, realm: str = DEFAULT_REALM, algs: str | None = None
    ) -> None:
        self.response = render_error(error, realm, algs)
        headers = {
            name: value
            for key, raw in self.response.headers
            if (name := key.decode("latin-1")) in _FORWARDED_HEADERS
            and (value := raw.decode("latin-1"))
        }
        detail = error.description or error.error or "unauthorized"
        super().__init__(status_code=self.response.status, detail=detail, headers=headers)


async def bearer_exception_handler(request: Request, exc: Exception) -> Response:
    """Exception handler rendering `BearerHTTPException` with the RFC 6750 JSON body."""
    assert isinstance(exc, BearerHTTPException)  # registered for that class only
    rendered = exc.response
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in rendered.headers}
    return Response(rendered.body, status_code=rendered.status, headers=headers)


def require_scopes(
    *scopes: str,
    validator: Validator | None = None,
    token_header: str = DEFAULT_TOKEN_HEADER,
    realm: str = DEFAULT_REALM,
) -> Callable[[HTTPConnection], Awaitable[TokenClaims]]:
    """A dependency returning the caller's `TokenClaims` when they hold every scope in `scopes`."""
    required = frozenset(scopes)
    if validator is not None:
        require_validator(validator, "require_scopes")

    async def dependency(connection: HTTPConnection) -> TokenClaims:
        try:
            return await _claims(connection, required, validator, token_header)
        except BearerError as error:
            raise BearerHTTPException(error, realm, _algs(connection, validator)) from None

    return dependency


async def _claims(
    connection: HTTPConnection,
    required: frozenset[str],
    validator: Validator | None,
    token_header: str,
) -> TokenClaims:
    existing = connection.scope.get("auth")
    if isinstance(existing, TokenClaims) and existing.active:
        try:
            check_scopes(existing, required)  # the middleware already checked the token itself
        except BearerError as error:
            if existing.jkt is not None:  # it came with a DPoP proof: answer in that scheme
                error.scheme = DPOP
            raise
        return existing
    chosen = validator or getattr(connection.app.state, VALIDATOR_STATE_KEY, None)
    if not isinstance(chosen, Validator):
        raise TypeError(
            "require_scopes needs a Validator: pass validator=, set "
            f"app.state.{VALIDATOR_STATE_KEY}, or install TokenGateMiddleware"
        )
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in connection.headers.raw]
    presented = resolve_credentials(headers, token_header=token_header)
    if presented.proof is None:
        return validated(await chosen.validate(presented.token, required))
    url = scope_url(connection.scope, chosen.settings.dpop.allowed_origins)
    method = connection.scope.get("method", "GET")
    return validated(
        await chosen.validate_dpop(presented, method=method, url=url, required_scopes=required)
    )


def _algs(connection: HTTPConnection, validator: Validator | None) -> str:
    """The DPoP `algs` of the validator in use, for the challenge; behind the middleware (whose
    validator the dependency cannot see) the default policy's."""
    chosen = validator or getattr(connection.app.state, VALIDATOR_STATE_KEY, None)
    return chosen.algs if isinstance(chosen, Validator) else DEFAULT_PROOF_POLICY.algs
