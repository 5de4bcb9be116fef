"""The neutral error response every adapter sends (RFC 6750 §3, RFC 6749 §5.2 body shape).

Adapters (ASGI, WSGI, FastAPI) only translate an `ErrorResponse` into their framework's
terms; the status, headers and body are decided here once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

from tokengate.core.challenge import bearer_challenge
from tokengate.resource.errors import BearerError

DEFAULT_REALM = "tokengate"


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """Status, headers (lower-case names) and JSON body of a refused request."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status_line(self) -> str:
        """`"401 Unauthorized"`, as WSGI's `start_response` wants it."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def render_error(error: BearerError, realm: str = DEFAULT_REALM) -> ErrorResponse:
    """Render `error`: a `Bearer` challenge for 400/401/403, `Retry-After` for 503."""
    body = json.dumps(error_body(error), separators=(",", ":")).encode()
    headers = [
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        ("content-length", str(len(body))),
    ]
    if error.challenge:
        headers.append(("www-authenticate", challenge_for(error, realm)))
    if error.retry_after is not None:
        headers.append(("retry-after", str(error.retry_after)))
    return ErrorResponse(error.status_code, tuple(headers), body)


def challenge_for(error: BearerError, realm: str = DEFAULT_REALM) -> str:
    """The `WWW-Authenticate` value; bare `Bearer realm=...` when there is no error code (§3.1)."""
    if error.error is None:
        return bearer_challenge(realm)
    return bearer_challenge(realm, error.error, error.description or None, error.scope)


def error_body(error: BearerError) -> dict[str, str]:
    """`{"error": ..., "error_description": ...}`; no `error` when the challenge has none."""
    body: dict[str, str] = {}
    if error.error is not None:
        body["error"] = error.error
    if error.description:
        body["error_description"] = error.description
    return body
