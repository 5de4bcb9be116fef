"""Pure-ASGI middleware protecting paths of any ASGI app (RFC 6750 §2.1, §3).

Unprotected paths pass untouched. On a protected path the token is resolved, validated and
checked against the route's scopes (a token presented with a DPoP proof, RFC 9449 §7.1: the
proof too, for this request's method and URL — scheme, `Host` and the raw path as sent); the
claims then reach the app as `scope["auth"]` (so Starlette's `request.auth.scopes` and
`@requires` work) and `scope["state"]["token_claims"]`.
Refusals are rendered by `protocol.responses.render_error`. WebSocket handshakes are protected
too: refused with the HTTP response when the server offers `websocket.http.response`, else
closed with code 1008 (policy violation).

The middleware runs the validator's lifecycle with the app's: started at `lifespan.startup`
(revocation events, endpoint discovery), closed once the app has shut down.
"""

from __future__ import annotations

from tokengate.asgi.send import WEBSOCKET_DENIAL, send_response
from tokengate.asgi.types import ASGIApp, Message, Receive, Scope, Send
from tokengate.core.responses import Response
from tokengate.resource.adapters import Protection, scope_url, validated
from tokengate.resource.protocol.errors import BearerError
from tokengate.resource.protocol.policy import Policy
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER, RawCredentialReader
from tokengate.resource.protocol.responses import DEFAULT_REALM, render_error
from tokengate.resource.runtime.validator import Validator

CLAIMS_STATE_KEY = "token_claims"
_POLICY_VIOLATION = 1008


class TokenGateMiddleware(Protection):
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
        super().__init__(validator, "TokenGateMiddleware", policy, token_header, realm)
        self.app = app
        # Only these headers can carry the token; the others are never decoded.
        self._token = RawCredentialReader(token_header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        method, raw_path = scope.get("method", "GET"), scope.get("raw_path")
        requirement = self.policy.requirement(method, scope["path"], raw_path)
        if requirement is None:
            await self.app(scope, receive, send)
            return
        try:
            presented = self._token(scope["headers"])
            if presented.proof is None:  # Bearer (the resolver pairs DPoP with a proof)
                found = await self.validator.validate(presented.token, requirement.scopes)
            else:
                url = scope_url(scope, self.validator.settings.dpop.allowed_origins)
                found = await self.validator.validate_dpop(
                    presented, method=method, url=url, required_scopes=requirement.scopes
                )
            claims = validated(found)
        except BearerError as error:
            await _refuse(scope, send, render_error(error, self.realm, self.validator.algs))
            return
        state = {**scope.get("state", {}), CLAIMS_STATE_KEY: claims}
        await self.app({**scope, "auth": claims, "state": state}, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        validator = self.validator

        async def receive_starting() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await validator.start()
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await validator.aclose()
            await send(message)

        await self.app(scope, receive_starting, send_closing)


async def _refuse(scope: Scope, send: Send, response: Response) -> None:
    if scope["type"] == "http":
        await send_response(send, response)
    elif WEBSOCKET_DENIAL in scope.get("extensions", {}):
        await send_response(send, response, prefix=WEBSOCKET_DENIAL)
    else:
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
