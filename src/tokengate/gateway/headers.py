"""Which header fields cross the gateway, in each direction (RFC 9110 §7.6.1, §7.6.3).

Sans-I/O: raw ASGI header lists (lower-case `bytes` names) in, header lists out.

* Hop-by-hop fields are dropped both ways: the fixed set below plus every field the message's
  own `Connection` header names. `Proxy-Authorization`/`Proxy-Authenticate` address the proxy,
  not the origin, and `Expect` has been answered by the gateway's own server (100-continue).
* Upstream, `X-Forwarded-For`, `-Proto` and `-Host` get this hop appended (comma-separated,
  after whatever the client sent, so the rightmost value is the one the gateway vouches for),
  and `Via` is added (RFC 9110 §7.6.3).
* `Host` is the upstream's authority unless the client's is preserved.

Everything else passes byte for byte, the custom token header included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
_REQUEST_ONLY = frozenset({b"expect", b"host"})
VIA = (b"via", b"1.1 tokengate")


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Field names listed in the `Connection` header(s), lower-cased (RFC 9110 §7.6.1)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    named.discard(b"")
    return frozenset(named)


def end_to_end(
    headers: Sequence[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()
) -> RawHeaders:
    """`headers` without hop-by-hop fields, `Connection`-named fields, or names in `drop`.

    `drop` also catches spellings with `_` for `-`: CGI-style servers (WSGI, PHP) map both to
    the same variable, so `X_Auth_Subject` would otherwise impersonate `X-Auth-Subject`.
    """
    named = connection_named(headers)
    return [
        (lowered, value)
        for name, value in headers
        if (lowered := name.lower()) not in HOP_BY_HOP
        and lowered not in named
        and not (drop and lowered.replace(b"_", b"-") in drop)
    ]


def upstream_request_headers(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    client_host: str | None,
    scheme: str,
    upstream_authority: bytes,
    preserve_host: bool = False,
    drop: frozenset[bytes] = frozenset(),
) -> RawHeaders:
    """What the upstream receives: end-to-end fields, `Host`, `X-Forwarded-*` and `Via`."""
    host = _single(headers, b"host")
    kept = end_to_end(headers, drop | _REQUEST_ONLY)
    out = [(b"host", host if preserve_host and host else upstream_authority)]
    out += [h for h in kept if h[0] not in _FORWARDED]
    client = client_host.encode("latin-1") if client_host else None
    out.append((b"x-forwarded-for", _append(kept, b"x-forwarded-for", client)))
    out.append((b"x-forwarded-proto", _append(kept, b"x-forwarded-proto", scheme.encode())))
    out.append((b"x-forwarded-host", _append(kept, b"x-forwarded-host", host)))
    out.append(VIA)
    return [h for h in out if h[1]]


def downstream_response_headers(headers: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
    """What the client receives of the upstream's response header fields."""
    return [*end_to_end(headers), VIA]


_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})


def _single(headers: Iterable[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value
    return None


def _append(headers: Iterable[tuple[bytes, bytes]], wanted: bytes, value: bytes | None) -> bytes:
    earlier = [v.strip() for name, v in headers if name == wanted and v.strip()]
    if value:
        earlier.append(value)
    return b", ".join(earlier)
