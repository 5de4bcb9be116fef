"""Find the access token a request carries (RFC 6750 §2.1, §3.1).

Two places are read: a custom header (default `X-Access-Token`, the value being the bare
token) and `Authorization: Bearer <b64token>`. Both present with different values, a header
repeated, or a value that is not a `b64token` → `invalid_request` (400). Neither present →
`MissingToken` (401, challenge without an error code). An `Authorization` header with another
scheme (e.g. `Basic` meant for a proxy) is not a bearer token and is ignored. Query-string and
form-body tokens (§2.2, §2.3) are not accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tokengate.resource.protocol.errors import InvalidRequest, MissingToken

DEFAULT_TOKEN_HEADER = "X-Access-Token"
MAX_TOKEN_LENGTH = 4096
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def resolve_token(
    headers: Iterable[tuple[str, str]], *, token_header: str = DEFAULT_TOKEN_HEADER
) -> str:
    """Return the one token in `headers` (name, value pairs; names in any case)."""
    custom_name = token_header.lower()
    bearer: list[str] = []
    custom: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "authorization":
            bearer.extend(_bearer_credentials(value))
        elif lowered == custom_name:
            custom.append(_checked(value.strip(), token_header))
    return _single(bearer, custom, token_header)


def _bearer_credentials(value: str) -> list[str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return []
    return [_checked(rest.strip(), "Authorization")]


def _checked(token: str, header: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.fullmatch(token):
        raise InvalidRequest(f"malformed {header} header")
    return token


def _single(bearer: list[str], custom: list[str], token_header: str) -> str:
    if len(bearer) > 1 or len(custom) > 1:
        raise InvalidRequest("the access token header is repeated")
    if bearer and custom and bearer[0] != custom[0]:
        raise InvalidRequest(f"Authorization and {token_header} carry different tokens")
    found = bearer or custom
    if not found:
        raise MissingToken("an access token is required")
    return found[0]


class RawTokenReader:
    """`resolve_token` for raw ASGI headers (byte names, lower-case from the server, byte
    values): the hot path of the ASGI adapter and the decision service. One pass; only the
    two names that matter are decoded, and the common case (one custom header, or one
    `Authorization`) skips building the pair list `resolve_token` takes.
    """

    def __init__(self, token_header: str = DEFAULT_TOKEN_HEADER) -> None:
        self.token_header = token_header
        self._custom = token_header.lower().encode("latin-1")
        self._wanted = frozenset({b"authorization", self._custom})

    def __call__(self, headers: Sequence[tuple[bytes, bytes]]) -> str:
        """The one token in `headers`, with `resolve_token`'s errors."""
        wanted = self._wanted
        found = [
            (name, value)
            for name, value in headers
            if name in wanted or (not name.islower() and name.lower() in wanted)
        ]
        if len(found) == 1 and found[0][0] == self._custom:
            return _checked(found[0][1].decode("latin-1").strip(), self.token_header)
        pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in found]
        return resolve_token(pairs, token_header=self.token_header)
