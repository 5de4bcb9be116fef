"""Errors of the resource-server side (RFC 6750 §3.1, RFC 7662 §2.2).

Exception tree::

    BearerError                         rendered as a response (responses.render_error)
    ├── MissingToken             401    challenge without an error code (RFC 6750 §3.1)
    ├── InvalidRequest           400    invalid_request
    ├── InvalidToken             401    invalid_token
    ├── InvalidDPoPProof         401    invalid_dpop_proof (RFC 9449 §7.1, in the `DPoP` challenge)
    ├── InsufficientScope        403    insufficient_scope (+ `scope` attribute)
    └── ServiceUnavailable       503    temporarily_unavailable (+ `Retry-After`, no challenge)

    IntrospectionError                  the authorization server gave no usable answer → 503
    ├── IntrospectionUnavailable        unreachable, timed out, 5xx or other unexpected status
    │   └── CircuitOpen                 calls suspended after repeated failures
    ├── InvalidIntrospectionResponse    not a JSON object with a boolean `active`
    └── DiscoveryError                  RFC 8414 metadata missing, malformed or for another issuer

No message built here ever contains a token or a secret.
"""

from __future__ import annotations

from typing import ClassVar

from tokengate.core.errors import safe_description

BEARER = "Bearer"
DPOP = "DPoP"


class BearerError(Exception):
    """A request the resource server refuses; adapters render it, never raise it further.

    `scheme` names the challenge that carries the error code: `Bearer` (RFC 6750 §3), or `DPoP`
    (RFC 9449 §7.1) when the request presented its token with a DPoP proof.
    """

    error: ClassVar[str | None] = None
    status_code: ClassVar[int] = 401
    challenge: ClassVar[bool] = True
    default_scheme: ClassVar[str] = BEARER

    def __init__(
        self,
        description: str = "",
        *,
        scope: str | None = None,
        retry_after: int | None = None,
        scheme: str | None = None,
    ) -> None:
        super().__init__(description or self.error or "unauthorized")
        self.description = safe_description(description)
        self.scope = scope
        self.retry_after = retry_after
        self.scheme = scheme or self.default_scheme


class MissingToken(BearerError):
    """RFC 6750 §3.1: no credentials at all, so the challenge carries no error code."""


class InvalidRequest(BearerError):
    """RFC 6750 §3.1 `invalid_request`: malformed, or more than one token method."""

    error = "invalid_request"
    status_code = 400


class InvalidToken(BearerError):
    """RFC 6750 §3.1 `invalid_token`: inactive, expired, revoked, unknown, or for elsewhere."""

    error = "invalid_token"
    status_code = 401


class InvalidDPoPProof(BearerError):
    """RFC 9449 §7.1 `invalid_dpop_proof`: the DPoP proof is missing, repeated or fails §4.3."""

    error = "invalid_dpop_proof"
    status_code = 401
    default_scheme = DPOP


class InsufficientScope(BearerError):
    """RFC 6750 §3.1 `insufficient_scope`: the token lacks a scope the route requires."""

    error = "insufficient_scope"
    status_code = 403


class ServiceUnavailable(BearerError):
    """The token could not be checked right now; the client should retry, keeping its token."""

    error = "temporarily_unavailable"
    status_code = 503
    challenge = False


class IntrospectionError(Exception):
    """The authorization server could not give a usable introspection answer."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IntrospectionUnavailable(IntrospectionError):
    """Unreachable, timed out, 5xx or another status than 200."""


class CircuitOpen(IntrospectionUnavailable):
    """Calls are suspended after repeated failures; `retry_after` says for how long."""


class InvalidIntrospectionResponse(IntrospectionError):
    """A 200 whose body is not an RFC 7662 §2.2 JSON object with a boolean `active`."""


class DiscoveryError(IntrospectionError):
    """RFC 8414 metadata could not be used to find the introspection endpoint."""
