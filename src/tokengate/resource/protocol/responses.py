"""The response every adapter sends for a refused request (RFC 6750 §3, RFC 6749 §5.2 body).

`render_error` returns the same neutral `tokengate.core.responses.Response` the authorization
server's endpoints return; adapters (ASGI, WSGI, FastAPI) only translate it into their
framework's terms, so status, headers and body are decided here once.
"""

from __future__ import annotations

from tokengate.core.challenge import bearer_challenge
from tokengate.core.responses import Response, json_response
from tokengate.resource.protocol.errors import BearerError

DEFAULT_REALM = "tokengate"
_NO_STORE = ((b"cache-control", b"no-store"),)


def render_error(error: BearerError, realm: str = DEFAULT_REALM) -> Response:
    """Render `error`: a `Bearer` challenge for 400/401/403, `Retry-After` for 503."""
    headers = list(_NO_STORE)
    if error.challenge:
        headers.append((b"www-authenticate", challenge_for(error, realm).encode("latin-1")))
    if error.retry_after is not None:
        headers.append((b"retry-after", b"%d" % error.retry_after))
    return json_response(error.status_code, error_body(error), tuple(headers))


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
