"""`WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 6750 §3, RFC 6749 §5.2).

Every quoted value goes through one escaping function, so no input can break out of a
quoted-string or inject a header.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote(value: str) -> str:
    """Render `value` as an RFC 9110 §5.6.4 quoted-string, dropping control characters."""
    cleaned = _CONTROL.sub("", value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(scheme: str, params: dict[str, str | None]) -> str:
    """Build `Scheme k="v", ...`, skipping parameters whose value is None."""
    parts = [f"{key}={quote(val)}" for key, val in params.items() if val is not None]
    return f"{scheme} {', '.join(parts)}" if parts else scheme


def basic_challenge(realm: str) -> str:
    """RFC 7617 challenge sent with `invalid_client` (RFC 6749 §5.2)."""
    return challenge("Basic", {"realm": realm, "charset": "UTF-8"})


def bearer_challenge(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """RFC 6750 §3 challenge; no error code when the request carried no token."""
    return challenge(
        "Bearer",
        {"realm": realm, "error": error, "error_description": description, "scope": scope},
    )
