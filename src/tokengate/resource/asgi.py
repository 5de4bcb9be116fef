"""Pure-ASGI middleware protecting paths of any ASGI app (RFC 6750 §2.1, §3).

Unprotected paths pass untouched. On a protected path the token is resolved, validated and
checked against the route's scopes; the claims then reach the app as `scope["auth"]` (so
Starlette's `request.auth.scopes` and `@requires` work) and `scope["state"]["token_claims"]`.
Refusals are rendered by `responses.render_error`. WebSocket handshakes are protected too:
refused with the HTTP response when the server offers `websocket.http.response`, else closed
with code 1008 (policy violation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tokengate.resource.errors import BearerError
from tokengate.resource.policy import Policy
from tokengate.resource.resolver import DEFAULT_TOKEN_HEADER, resolve_token
from tokengate.resource.responses import DEFAULT_REALM, ErrorResponse, render_error
from tokengate.resource.validator import Validator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CLAIMS_STATE_KEY = "token_claims"
_POLICY_VIOLATION = 1008


class TokenGateMiddleware:
    """`app` behind bearer-token validation on the paths `policy` protects (default: all)."""

    def __init__(
        self,
        app: ASGIApp,
        validator: Validator,
        *,
        policy: Policy | None = None,
        token_header: str = DEFAULT_TOKEN_HEADER,
        realm: str = DEFAULT_REALM,
    ) -> None:
        self.app = app
        self.validator = validator
        self.policy = policy if policy is not None else Policy.protect("/**")
        self.token_header = token_header
        self.realm = realm
        # Only these headers can carry the token; the others are never decoded.
        self._token_headers = frozenset({b"authorization", token_header.lower().encode("latin-1")})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method, raw_path = scope.get("method", "GET"), scope.get("raw_path")
        requirement = self.policy.requirement(method, scope["path"], raw_path)
        if requirement is None:
            await self.app(scope, receive, send)
            return
        try:
            token = resolve_token(
                _headers(scope, self._token_headers), token_header=self.token_header
            )
            claims = await self.validator.validate(token, requirement.scopes)
        except BearerError as error:
            await _refuse(scope, send, render_error(error, self.realm))
            return
        state = {**scope.get("state", {}), CLAIMS_STATE_KEY: claims}
        await self.app({**scope, "auth": claims, "state": state}, receive, send)


def _headers(scope: Scope, wanted: frozenset[bytes]) -> list[tuple[str, str]]:
    """The request headers named in `wanted` (lower-case), decoded."""
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope["headers"]
        if name in wanted or (not name.islower() and name.lower() in wanted)
    ]


async def _refuse(scope: Scope, send: Send, response: ErrorResponse) -> None:
    if scope["type"] == "http":
        await _send_response(send, response, "http.response")
    elif "websocket.http.response" in scope.get("extensions", {}):
        await _send_response(send, response, "websocket.http.response")
    else:
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION})


async def _send_response(send: Send, response: ErrorResponse, prefix: str) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": f"{prefix}.start", "status": response.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": response.body})
