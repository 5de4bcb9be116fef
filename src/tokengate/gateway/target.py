"""Request-target hygiene at the edge (RFC 3986 §5.2.4, RFC 9110 §4.2.3).

A path that different parsers read differently is how edge checks get bypassed: the gateway
matches `/x/../auth-api` as one path, the upstream resolves it to another; `%2F` and `..;`
(Tomcat) add more readings. Like nginx and Envoy, the gateway refuses such targets with 400
instead of guessing: dot segments (plain, percent-encoded, or followed by `;params`),
encoded slashes and backslashes never reach the upstream. This also keeps a configured
upstream base path (`http://up/base`) and the reserved `/_tokengate/` prefix from being
escaped.
"""

from __future__ import annotations

_ENCODED = (b"%2e", b"%2f", b"%5c", b"%00")


def ambiguous_target(raw_path: bytes) -> bool:
    """True when `raw_path` could resolve to different paths in different parsers."""
    if not raw_path.startswith(b"/") or b"\\" in raw_path or b"\x00" in raw_path:
        return True
    lowered = raw_path.lower()
    if any(marker in lowered for marker in _ENCODED):
        return True
    return any(seg.split(b";", 1)[0] in (b".", b"..") for seg in raw_path.split(b"/"))
