"""The response every adapter sends for a refused request (RFC 6750 §3, RFC 6749 §5.2 body,
RFC 9449 §7.1).

Where DPoP is accepted (`algs` given), a 401/403 offers both schemes in one `WWW-Authenticate`
value (RFC 9110 §11.6.1): `Bearer realm=...` and `DPoP algs="ES256 ..."`, the error code in
the challenge of the scheme the request used (`BearerError.scheme`), listed first.

`render_error` returns the same neutral `tokengate.core.responses.Response` the authorization
server's endpoints return; adapters (ASGI, WSGI, FastAPI) only translate it into their
framework's terms, so status, headers and body are decided here once.
"""

from __future__ import annotations

from tokengate.core.challenge import bearer_challenge, challenge
from tokengate.core.responses import Response, json_response
from tokengate.resource.protocol.errors import DPOP, BearerError

DEFAULT_REALM = "tokengate"
_NO_STORE = ((b"cache-control", b"no-store"),)


def render_error(
    error: BearerError, realm: str = DEFAULT_REALM, algs: str | None = None
) -> Response:
    """Render `error`: the challenges for 400/401/403, `Retry-After` for 503; `algs` (the
    space-separated DPoP proof algorithms) also offers the `DPoP` scheme."""
    headers = list(_NO_STORE)
    if error.challenge:
        value = challenge_for(error, realm) if algs is None else challenges(error, realm, algs)
        headers.append((b"www-authenticate", value.encode("latin-1")))
    if error.retry_after is not None:
        headers.append((b"retry-after", b"%d" % error.retry_after))
    return json_response(error.status_code, error_body(error), tuple(headers))


def challenge_for(error: BearerError, realm: str = DEFAULT_REALM) -> str:
    """The `WWW-Authenticate` value; bare `Bearer realm=...` when there is no error code (§3.1)."""
    if error.error is None:
        return bearer_challenge(realm)
    return bearer_challenge(realm, error.error, error.description or None, error.scope)


def challenges(error: BearerError, realm: str, algs: str) -> str:
    """`Bearer ...` and `DPoP ...` in one value, the one carrying the error code first."""
    if error.scheme != DPOP:
        return f"{challenge_for(error, realm)}, {dpop_challenge(realm, algs)}"
    return f"{dpop_challenge(realm, algs, error)}, {bearer_challenge(realm)}"


def dpop_challenge(realm: str, algs: str, error: BearerError | None = None) -> str:
    """RFC 9449 §7.1: `DPoP realm=..., [error=..., error_description=..., scope=...,] algs=...`."""
    params: dict[str, str | None] = {"realm": realm}
    if error is not None and error.error is not None:
        params.update(
            error=error.error, error_description=error.description or None, scope=error.scope
        )
    params["algs"] = algs
    return challenge(DPOP, params)


def error_body(error: BearerError) -> dict[str, str]:
    """`{"error": ..., "error_description": ...}`; no `error` when the challenge has none."""
    body: dict[str, str] = {}
    if error.error is not None:
        body["error"] = error.error
    if error.description:
        body["error_description"] = error.description
    return body
