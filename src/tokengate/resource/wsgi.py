"""WSGI middleware (Flask, Django, any PEP 3333 app) over the same core as the ASGI one.

Claims reach the app as `environ["tokengate.claims"]` (Flask: `request.environ[...]`).
WSGI servers join repeated headers with commas, which the resolver rejects as malformed, so a
repeated token header is still a 400. Some servers (mod_wsgi) hide `Authorization` from the
app unless told otherwise (`WSGIPassAuthorization On`); the custom header is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tokengate.resource.errors import BearerError
from tokengate.resource.policy import Policy
from tokengate.resource.resolver import DEFAULT_TOKEN_HEADER, resolve_token
from tokengate.resource.responses import DEFAULT_REALM, render_error
from tokengate.resource.validator import SyncValidator

CLAIMS_ENVIRON_KEY = "tokengate.claims"


class TokenGateWSGIMiddleware:
    """`app` behind bearer-token validation on the paths `policy` protects (default: all)."""

    def __init__(
        self,
        app: WSGIApplication,
        validator: SyncValidator,
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
        self._environ_key = "HTTP_" + token_header.upper().replace("-", "_")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        requirement = self.policy.requirement(method, _path(environ))
        if requirement is None:
            return self.app(environ, start_response)
        try:
            token = resolve_token(self._headers(environ), token_header=self.token_header)
            claims = self.validator.validate(token, requirement.scopes)
        except BearerError as error:
            response = render_error(error, self.realm)
            start_response(response.status_line, list(response.headers))
            return [response.body]
        environ[CLAIMS_ENVIRON_KEY] = claims
        return self.app(environ, start_response)

    def _headers(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        names = {"HTTP_AUTHORIZATION": "authorization", self._environ_key: self.token_header}
        return [(name, environ[key]) for key, name in names.items() if key in environ]


def _path(environ: WSGIEnvironment) -> str:
    # PEP 3333 hands the path over as bytes decoded with latin-1; routers match on UTF-8 text.
    # Some servers (and httpx.WSGITransport) pass text already decoded: use it as it is.
    raw: str = environ.get("PATH_INFO", "") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw
