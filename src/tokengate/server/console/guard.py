"""The browser-facing protections of the admin console. Sans-I/O.

- Session cookie (RFC 6265 §4.1.2): `HttpOnly`, `SameSite=Strict`, `Path=/admin`, and `Secure`
  unless the issuer is plain http on a loopback address (a developer's machine; a non-loopback
  http issuer refuses to start the console at all, see `check_issuer`).
- CSRF: every state-changing request must come from our own origin (`Sec-Fetch-Site:
  same-origin` where the browser sends it, else `Origin` equal to the issuer's; see
  `BrowserHeaders.same_origin`) and carry the session's synchronizer token
  (`Session.csrf_matches`).
- Headers on every answer: a CSP with no inline script or style and no framing,
  `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store`, `nosniff`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from tokengate.asgi.types import Scope
from tokengate.core.wire import ADMIN_CONSOLE_PATH

COOKIE = "tokengate_admin"
CONSOLE_PATH = ADMIN_CONSOLE_PATH
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_READ = {b"cookie": "cookie", b"origin": "origin", b"sec-fetch-site": "sec-fetch-site"}


class ConsoleRefused(Exception):
    """The console may not run with these settings."""


def is_loopback_http(issuer: str) -> bool:
    """True for `http://` on 127.0.0.0/8, `[::1]` or `localhost`."""
    parts = urlsplit(issuer)
    if parts.scheme != "http" or parts.hostname is None:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def check_issuer(issuer: str) -> None:
    """Refuse a console whose cookie would travel in clear text over a network."""
    scheme = urlsplit(issuer).scheme
    if scheme != "https" and not is_loopback_http(issuer):
        raise ConsoleRefused(
            "the admin console needs an https issuer (or http on a loopback address): "
            f"{issuer!r} would send the admin session in clear text"
        )


def origin_of(url: str) -> str:
    """RFC 6454 §6.2 serialization of a URL's origin (default ports omitted)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True, slots=True)
class BrowserHeaders:
    """What the console reads from a request besides the body."""

    cookie: str | None = None
    origin: str | None = None
    fetch_site: str | None = None

    def session_id(self) -> str | None:
        """The value of our cookie (RFC 6265 §5.4 `name=value` pairs joined by `; `)."""
        for pair in (self.cookie or "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == COOKIE:
                return value or None
        return None

    def same_origin(self, expected: str) -> bool:
        """The request comes from a page of `expected` (the issuer's origin).

        `Sec-Fetch-Site` is computed by the browser (no page can set it), so where it is sent
        it must say `same-origin`. `Origin` must then be `expected`, or `null`: under our
        `Referrer-Policy: no-referrer` Chromium sends `Origin: null` on a same-origin form
        POST (Fetch §3.2.5). A browser that sends no `Sec-Fetch-Site` must send our `Origin`.
        """
        if self.fetch_site is not None:
            return self.fetch_site == "same-origin" and self.origin in (None, "null", expected)
        return self.origin == expected


def browser_headers(scope: Scope) -> BrowserHeaders:
    """The cookie, `Origin` and `Sec-Fetch-Site` headers (repeated cookies joined, RFC 9113
    §8.2.3; any other repeat makes the request unreadable: treated as cross-site)."""
    found: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:
        key = _READ.get(raw_name.lower())
        if key is not None:
            found.setdefault(key, []).append(raw_value.decode("latin-1"))
    cookies = found.get("cookie")
    origin, site = found.get("origin", []), found.get("sec-fetch-site", [])
    if len(origin) > 1 or len(site) > 1:
        return BrowserHeaders("; ".join(cookies or ()), "null", "cross-site")
    return BrowserHeaders(
        "; ".join(cookies) if cookies else None,
        origin[0] if origin else None,
        site[0] if site else None,
    )


def session_cookie(session_id: str, secure: bool, max_age: int) -> bytes:
    """`Set-Cookie` for a session."""
    value = f"{COOKIE}={session_id}; Path={CONSOLE_PATH}; Max-Age={max_age}; HttpOnly; "
    value += "SameSite=Strict" + ("; Secure" if secure else "")
    return value.encode("latin-1")


def cleared_cookie(secure: bool) -> bytes:
    """`Set-Cookie` that removes the session cookie (logout, expiry)."""
    return session_cookie("", secure, 0)
