"""WSGI middleware (Flask, Django, any PEP 3333 app) driving the one async runtime.

The validator runs on its own event loop in a daemon thread (`Validator.loop_thread`): a
request thread answers from the thread-safe local cache when it can, and otherwise hands the
lookup to that loop and waits, so every thread shares one single-flight, the shared cache and
the revocation-event subscriber. A token presented with a DPoP proof (RFC 9449 §7.1) is always
checked on that loop (the proof for this request's method and URL, then its replay).
Claims reach the app as `environ["tokengate.claims"]`
(Flask: `request.environ[...]`).

The policy sees the raw request target too (`RAW_URI` or `REQUEST_URI`, as gunicorn, uWSGI
and Werkzeug provide it), so an encoded `/` cannot shift what a `..` removes. WSGI servers
join repeated headers with commas, which the resolver rejects as malformed, so a repeated
token header is still a 400. Some servers (mod_wsgi) hide `Authorization` from the app unless
told otherwise (`WSGIPassAuthorization On`); the custom header is unaffected.
"""

from __future__ import annotations

from collections.abc import Collection, Coroutine, Iterable
from http import HTTPStatus
from urllib.parse import quote
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tokengate.core.responses import Response
from tokengate.resource.adapters import Protection, validated
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.dpop import request_url
from tokengate.resource.protocol.errors import BearerError, ServiceUnavailable
from tokengate.resource.protocol.policy import Policy, Requirement
from tokengate.resource.protocol.resolver import (
    DEFAULT_TOKEN_HEADER,
    Presented,
    resolve_credentials,
)
from tokengate.resource.protocol.responses import DEFAULT_REALM, render_error
from tokengate.resource.runtime.validator import Validator

CLAIMS_ENVIRON_KEY = "tokengate.claims"
# Beyond the validator's own total deadline, the most a request thread waits for the loop.
_HANDOFF_MARGIN = 1.0


class TokenGateWSGIMiddleware(Protection):
    """`app` behind bearer-token validation on the paths `policy` protects (default: all)."""

    def __init__(
        self,
        app: WSGIApplication,
        validator: Validator,
        *,
        policy: Policy | None = None,
        token_header: str = DEFAULT_TOKEN_HEADER,
        realm: str = DEFAULT_REALM,
    ) -> None:
        super().__init__(validator, "TokenGateWSGIMiddleware", policy, token_header, realm)
        self.app = app
        self._environ_key = "HTTP_" + token_header.upper().replace("-", "_")
        self._runtime = self.validator.loop_thread()
        self._wait = self.validator.settings.timeouts.total + _HANDOFF_MARGIN

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        requirement = self.policy.requirement(method, _path(environ), _raw_path(environ))
        if requirement is None:
            return self.app(environ, start_response)
        try:
            environ[CLAIMS_ENVIRON_KEY] = self._claims(environ, requirement)
        except BearerError as error:
            return _refuse(start_response, render_error(error, self.realm, self.validator.algs))
        return self.app(environ, start_response)

    def close(self) -> None:
        """Stop following revocation events and close the validator's connections."""
        self.validator.close_loop_thread()

    def _claims(self, environ: WSGIEnvironment, requirement: Requirement) -> TokenClaims:
        presented = resolve_credentials(self._headers(environ), token_header=self.token_header)
        if presented.proof is not None:
            return validated(self._run(self._dpop(environ, presented, requirement)))
        claims = self.validator.validate_cached(presented.token, requirement.scopes)
        if claims is None:
            claims = self._run(self.validator.validate(presented.token, requirement.scopes))
        return validated(claims)

    def _dpop(
        self, environ: WSGIEnvironment, presented: Presented, requirement: Requirement
    ) -> Coroutine[object, object, TokenClaims]:
        url = environ_url(environ, self.validator.settings.dpop.allowed_origins)
        method = environ.get("REQUEST_METHOD", "GET")
        return self.validator.validate_dpop(
            presented, method=method, url=url, required_scopes=requirement.scopes
        )

    def _run(self, work: Coroutine[object, object, TokenClaims]) -> TokenClaims:
        try:
            return self._runtime.run(work, self._wait)
        except TimeoutError:
            raise ServiceUnavailable(
                "the token cannot be checked right now",
                retry_after=self.validator.settings.retry_after,
            ) from None

    def _headers(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        names = {
            "HTTP_AUTHORIZATION": "authorization",
            self._environ_key: self.token_header,
            "HTTP_DPOP": "dpop",
        }
        return [(name, environ[key]) for key, name in names.items() if key in environ]


def _refuse(start_response: StartResponse, response: Response) -> list[bytes]:
    status = f"{response.status} {HTTPStatus(response.status).phrase}"
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
    headers.append(("content-length", str(len(response.body))))
    start_response(status, headers)
    return [response.body]


def environ_url(environ: WSGIEnvironment, allowed_origins: Collection[str]) -> str:
    """The URL the client called (PEP 3333's URL reconstruction, path as sent where known)."""
    host = environ.get("HTTP_HOST")
    if not host and environ.get("SERVER_NAME"):
        host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '')}".rstrip(":")
    mount = environ.get("SCRIPT_NAME", "")
    raw = _raw_path(environ)
    if raw is not None:
        path = mount + raw.decode("latin-1")
    else:
        path = quote(mount + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~%")
    return request_url(environ.get("wsgi.url_scheme"), host or None, path, allowed_origins)


def _path(environ: WSGIEnvironment) -> str:
    # PEP 3333 hands the path over as bytes decoded with latin-1; routers match on UTF-8 text.
    # Some servers (and httpx.WSGITransport) pass text already decoded: use it as it is.
    raw: str = environ.get("PATH_INFO", "") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _raw_path(environ: WSGIEnvironment) -> bytes | None:
    """The request target's path as sent (still percent-encoded), where the server gives it."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(target, str) or not target:
        return None
    path = target.split("?", 1)[0]
    mount = environ.get("SCRIPT_NAME", "")
    if mount and path.startswith(mount):
        path = path[len(mount) :]  # PATH_INFO, which the policy matches, is relative to it
    if not path.startswith("/"):
        return None  # absolute-form or empty: PATH_INFO alone decides
    try:
        return path.encode("latin-1")
    except UnicodeError:
        return None
