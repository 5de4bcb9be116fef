"""A framework-neutral HTTP response the endpoints return and the adapters send.

Header names and values are kept as latin-1 bytes, the form they take on the wire, so the
hot paths never re-encode the same constant headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tokengate.core.errors import OAuthError

Headers = tuple[tuple[bytes, bytes], ...]
JSON_TYPE = b"application/json"
# RFC 6749 §5.1, RFC 7662 §2.2: responses carrying tokens or token state are never cached.
NO_STORE: Headers = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
_JSON_NO_STORE: Headers = ((b"content-type", JSON_TYPE), *NO_STORE)


@dataclass(frozen=True, slots=True)
class Response:
    """Status, headers (lower-case names, latin-1 bytes) and a complete body."""

    status: int
    body: bytes = b""
    headers: Headers = ()

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), decoded."""
        wanted = name.lower().encode("latin-1")
        return next((v.decode("latin-1") for k, v in self.headers if k == wanted), None)


def encode_headers(headers: dict[str, str]) -> Headers:
    """`{"Name": "value"}` → wire-form header pairs."""
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


def json_response(status: int, payload: Any, headers: Headers | None = None) -> Response:
    """Compact JSON; `no-store` caching headers unless `headers` says otherwise."""
    extra = _JSON_NO_STORE if headers is None else ((b"content-type", JSON_TYPE), *headers)
    return Response(status, orjson.dumps(payload), extra)


def error_response(error: OAuthError) -> Response:
    """RFC 6749 §5.2 error JSON plus the error's own headers (challenges, Retry-After)."""
    return json_response(error.status_code, error.body(), NO_STORE + encode_headers(error.headers))
