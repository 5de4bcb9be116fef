"""The request a proxy asks about (sans-I/O): nginx `auth_request`, Traefik ForwardAuth, Caddy
`forward_auth` and Envoy's HTTP `ext_authz` each describe it differently.

* nginx sends the original method and request target in headers its configuration sets:
  `X-Original-Method` and `X-Original-URI` (`$request_uri`: the target as the client sent it).
* Traefik and Caddy set `X-Forwarded-Method` and `X-Forwarded-Uri` themselves.
* Envoy sends the original method as the method and the original path appended to the
  service's `path_prefix` (`/envoy/...`).

The URL a DPoP proof names (RFC 9449 §4.3 `htu`) also needs the original scheme and host:
`X-Forwarded-Proto` and, from nginx/Traefik/Caddy, `X-Forwarded-Host` (Envoy keeps the original
`Host`). Where a proxy appended to a list, the rightmost value is the one it vouches for; a
header repeated or missing leaves that part unknown (`forwarded_origin`), which the DPoP check
refuses unless one origin is configured.

Exactly one description must be there: one header of each name, and where both families are
present they must agree. Anything else is ambiguous and refused (400), as is a target that is
not origin-form (RFC 9112 §3.2.1) or that parsers could read differently (`target`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tokengate.edge.target import ambiguous_target

_NGINX = (b"x-original-method", b"x-original-uri")
_FORWARDED = (b"x-forwarded-method", b"x-forwarded-uri")
_WANTED = frozenset(_NGINX + _FORWARDED)
# RFC 9110 §5.6.2 tchar: what a method token may hold.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
MAX_TARGET = 8192


class AmbiguousOriginal(ValueError):
    """The original request is missing, described twice differently, or has an unsafe target."""


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The method and target of the request the proxy is holding."""

    method: str
    path: str  # percent-decoded once, as an ASGI server's `path`
    raw_path: bytes  # as the client sent it, still percent-encoded


def from_forward_auth(headers: list[tuple[bytes, bytes]]) -> OriginalRequest:
    """The original request named by nginx's or Traefik's/Caddy's headers."""
    return original(*forward_auth_target(headers))


def forward_auth_target(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    """The original method and request target, unvalidated (see `original`).

    On every decision: one pass over the headers, decoding only the four that matter.
    """
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _WANTED or (not name.islower() and (name := name.lower()) in _WANTED):
            if name in found:
                raise AmbiguousOriginal(f"repeated {name.decode()} header")
            found[name] = value
    nginx = _described(found, _NGINX)
    forwarded = _described(found, _FORWARDED)
    if nginx is None:
        if forwarded is None:
            raise AmbiguousOriginal("no original request: set X-Original-Method and X-Original-URI")
        return forwarded
    if forwarded is not None and forwarded != nginx:
        raise AmbiguousOriginal("X-Original-* and X-Forwarded-* describe different requests")
    return nginx


def _described(found: dict[bytes, bytes], names: tuple[bytes, bytes]) -> tuple[str, str] | None:
    """The (method, target) one header family gives, None if absent; half a family is refused."""
    method, uri = found.get(names[0]), found.get(names[1])
    if method is None and uri is None:
        return None
    if method is None or uri is None:
        missing = names[0] if method is None else names[1]
        raise AmbiguousOriginal(f"the original request is incomplete: no {missing.decode()} header")
    return method.decode("latin-1").strip(), uri.decode("latin-1").strip()


def forwarded_origin(
    headers: list[tuple[bytes, bytes]], *, host_header: bytes
) -> tuple[str | None, str | None]:
    """(scheme, host) of the original request from `X-Forwarded-Proto` and `host_header`
    (`x-forwarded-host` for forward-auth, `host` for Envoy); None where unknown."""
    wanted = {b"x-forwarded-proto": "scheme", host_header: "host"}
    found: dict[str, list[str]] = {"scheme": [], "host": []}
    for name, value in headers:
        part = wanted.get(name if name.islower() else name.lower())
        if part is not None:
            found[part].append(value.decode("latin-1"))
    return _last(found["scheme"]), _last(found["host"])


def _last(values: list[str]) -> str | None:
    if len(values) != 1:
        return None
    last = values[0].rsplit(",", 1)[-1].strip()
    return last or None


def from_envoy(method: str, raw_path: bytes, query: bytes, prefix: str) -> OriginalRequest:
    """The original request of an Envoy `ext_authz` check sent to `prefix` + original path."""
    target = raw_path.decode("latin-1").removeprefix(prefix) or "/"
    return original(method, target + ("?" + query.decode("latin-1") if query else ""))


def original(method: str, target: str) -> OriginalRequest:
    """Validate a method and an origin-form request target (`/path?query`)."""
    if not method or not set(method) <= _TOKEN_CHARS:
        raise AmbiguousOriginal("the original method is not an HTTP method token")
    if len(target) > MAX_TARGET:
        raise AmbiguousOriginal("the original request target is too long")
    if "#" in target:  # RFC 9112 §3.2: never in a request target; an upstream may keep it
        raise AmbiguousOriginal("the original request target holds a fragment")
    if target.startswith(("http://", "https://")):  # absolute-form, as some proxies forward it
        try:
            target = urlsplit(target).path or "/"
        except ValueError:  # e.g. an unclosed IPv6 literal in the authority
            raise AmbiguousOriginal("the original request target is not a valid URI") from None
    path = target.split("?", 1)[0]
    try:
        raw = path.encode("latin-1")
    except UnicodeEncodeError:
        raise AmbiguousOriginal("the original request target is not latin-1 text") from None
    if not path.startswith("/") or ambiguous_target(raw):
        raise AmbiguousOriginal(
            "dot segments, encoded slashes and backslashes are not accepted in the path"
        )
    return OriginalRequest(method, unquote(path, errors="replace"), raw)
