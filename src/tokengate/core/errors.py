"""OAuth 2.0 error responses as exceptions, one class per RFC error code.

Exception tree::

    OAuthError                         (RFC 6749 §5.2 JSON error body)
    ├── InvalidRequest          400
    │   └── RequestTooLarge     413    (oversized body; still `invalid_request`)
    ├── InvalidClient           401    (+ `WWW-Authenticate: Basic`)
    ├── InvalidGrant            400
    ├── UnauthorizedClient      400
    ├── UnsupportedGrantType    400
    ├── InvalidScope            400
    ├── InvalidTarget           400    (RFC 8707 §2)
    ├── InvalidDpopProof        400    (RFC 9449 §5; the token endpoint)
    ├── UseDpopNonce            400    (RFC 9449 §8; + `DPoP-Nonce`)
    ├── UnsupportedTokenType    400    (RFC 7009 §2.2.1)
    ├── AccessDenied            403    (authenticated client lacks a permission)
    ├── InvalidToken            401    (RFC 6750 §3.1; registration and admin bearer tokens)
    ├── InsufficientScope       403    (RFC 6750 §3.1; an admin token of the wrong role)
    ├── InvalidClientMetadata   400    (RFC 7591 §3.2.2, and its siblings below)
    │   ├── InvalidRedirectUri  400
    │   └── InvalidSoftwareStatement 400
    ├── NotFound                404    (management API)
    ├── MethodNotAllowed        405
    ├── UnsupportedMediaType    415
    ├── TooManyRequests         429    (+ `Retry-After`)
    ├── ServerError             500
    └── TemporarilyUnavailable  503    (+ `Retry-After`)
        └── IssuanceRateExceeded 429   (+ `Retry-After`; a client issuing past its rate)

Only these errors reach a client; anything else is rendered as a bare `server_error`.
"""

from __future__ import annotations

import re
from typing import ClassVar

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str) -> str:
    """Map text onto the RFC 6749 §5.2 `error_description` character set."""
    return _DESCRIPTION_UNSAFE.sub("?", text)


class OAuthError(Exception):
    """An error the protocol allows us to tell the client about (RFC 6749 §5.2)."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500

    def __init__(self, description: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description or self.error)
        self.description = safe_description(description)
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, str]:
        """The JSON error object of RFC 6749 §5.2."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status_code = 400


class RequestTooLarge(InvalidRequest):
    status_code = 413


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status_code = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status_code = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status_code = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status_code = 400


class InvalidTarget(OAuthError):
    error = "invalid_target"
    status_code = 400


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5: the `DPoP` proof is missing (where required), malformed or invalid."""

    error = "invalid_dpop_proof"
    status_code = 400


class UseDpopNonce(OAuthError):
    """RFC 9449 §8: retry with the nonce of the `DPoP-Nonce` header (which the caller sets)."""

    error = "use_dpop_nonce"
    status_code = 400


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"
    status_code = 400


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer token is missing, expired, revoked or unknown."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: the bearer token may not do this."""

    error = "insufficient_scope"
    status_code = 403


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a metadata value is invalid and the server will not replace it."""

    error = "invalid_client_metadata"
    status_code = 400


class InvalidRedirectUri(InvalidClientMetadata):
    """RFC 7591 §3.2.2: redirect URIs given (this server has no redirect-based flow)."""

    error = "invalid_redirect_uri"


class InvalidSoftwareStatement(InvalidClientMetadata):
    """RFC 7591 §3.2.2: a software statement was sent (none are accepted)."""

    error = "invalid_software_statement"


class NotFound(OAuthError):
    """No such resource (the management API)."""

    error = "not_found"
    status_code = 404


class MethodNotAllowed(InvalidRequest):
    status_code = 405


class UnsupportedMediaType(InvalidRequest):
    status_code = 415


class TooManyRequests(InvalidRequest):
    """RFC 6749 §2.3.1 brute-force protection; RFC 6585 §4 status."""

    status_code = 429


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class IssuanceRateExceeded(TemporarilyUnavailable):
    """A client asked for tokens faster than its rate: retry after `Retry-After` (RFC 6585 §4).

    `temporarily_unavailable`, not `invalid_request`: the request is well formed and the same
    one will succeed later (RFC 6749 §4.1.2.1's meaning); `slow_down` is RFC 8628's, for
    device-flow polling only, and clients of other grants do not know it.
    """

    status_code = 429
