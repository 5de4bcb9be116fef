"""A framework-neutral HTTP response the endpoints return and the adapters send."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tokengate.core.errors import OAuthError

JSON_TYPE = "application/json"
# RFC 6749 §5.1, RFC 7662 §2.2: responses carrying tokens or token state are never cached.
NO_STORE = (("cache-control", "no-store"), ("pragma", "no-cache"))
# One encoder for every response: `json.dumps` with arguments builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


@dataclass(frozen=True, slots=True)
class Response:
    """Status, headers (lower-case names) and a complete body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def json_response(
    status: int, payload: Any, headers: tuple[tuple[str, str], ...] = NO_STORE
) -> Response:
    """Compact JSON with `no-store` caching headers by default."""
    body = _ENCODE(payload).encode()
    return Response(status, body, (("content-type", JSON_TYPE), *headers))


def error_response(error: OAuthError) -> Response:
    """RFC 6749 §5.2 error JSON plus the error's own headers (challenges, Retry-After)."""
    extra = tuple((name.lower(), value) for name, value in error.headers.items())
    return json_response(error.status_code, error.body(), NO_STORE + extra)
