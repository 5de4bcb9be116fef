"""What a generated proxy configuration is built from, validated before any text is made.

Every value lands inside another program's configuration language, so each is checked
against a narrow alphabet first: a listen address (`HOST:PORT`), plain-HTTP base URLs
(`http://host:port[/prefix]`) and header field names without `_` (RFC 9110 §5.6.2 tokens,
narrowed: nginx drops `_` names, and `X_Auth_Subject` reads as `X-Auth-Subject` to CGI-style
apps, so the configurations strip those spellings instead of using them).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tokengate.edge.claims import DEFAULT_CLAIM_HEADERS, ClaimHeader
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*")
_HEADER = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
MAX_SEPARATORS = 5  # Caddy and Traefik strip each `-`/`_` spelling: 2**5 names at most
_RESERVED = frozenset({"authorization", "host", "content-length", "connection", "cookie"})


@dataclass(frozen=True, slots=True)
class Address:
    """A host (an IPv6 literal without brackets) and a port."""

    host: str
    port: int

    @property
    def url_host(self) -> str:
        """The host as written in a URL or `HOST:PORT` (IPv6 in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def authority(self) -> str:
        """`host:port`, IPv6 in brackets."""
        return f"{self.url_host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BaseUrl:
    """A plain-HTTP service: its address and a path prefix (`""` or `/prefix`)."""

    address: Address
    path: str = ""

    def __str__(self) -> str:
        return f"http://{self.address.authority}{self.path}"


@dataclass(frozen=True, slots=True)
class EdgeOptions:
    """Where the proxy listens, where it forwards, which decision service it asks, and the
    header names it passes (the token) and trusts from that service (the identity)."""

    listen: Address
    upstream: BaseUrl
    authz: BaseUrl
    token_header: str = DEFAULT_TOKEN_HEADER
    claim_headers: tuple[ClaimHeader, ...] = DEFAULT_CLAIM_HEADERS

    def __post_init__(self) -> None:
        if self.upstream.path:
            raise ValueError("--upstream takes no path: the proxy forwards the target as sent")
        check_header_name(self.token_header, "--token-header")
        seen = {self.token_header.lower()}
        for header in self.claim_headers:
            check_header_name(header.name, "--claim-header")
            if header.name.lower() in seen:
                raise ValueError(f"header {header.name!r} is named twice")
            seen.add(header.name.lower())

    @property
    def identity_headers(self) -> tuple[str, ...]:
        """The names of the headers only the decision service may set."""
        return tuple(header.name for header in self.claim_headers)

    @classmethod
    def parse(
        cls,
        listen: str,
        upstream: str,
        authz: str,
        token_header: str = DEFAULT_TOKEN_HEADER,
        claim_headers: tuple[str, ...] = (),
    ) -> EdgeOptions:
        """The options from their command-line spellings; `ValueError` names what is wrong."""
        return cls(
            listen=parse_address(listen, "--listen"),
            upstream=parse_base_url(upstream, "--upstream"),
            authz=parse_base_url(authz, "--authz"),
            token_header=token_header,
            claim_headers=tuple(ClaimHeader.parse(h) for h in claim_headers)
            or DEFAULT_CLAIM_HEADERS,
        )


def parse_address(text: str, option: str) -> Address:
    """`127.0.0.1:8080`, `[::1]:8080` or `edge.internal:8080`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{option}: expected HOST:PORT with a port 1-65535, got {text!r}")
    return Address(check_host(host, option), int(port))


def check_host(host: str, option: str) -> str:
    """An IP literal (IPv6 in brackets) or a DNS name; returned without the brackets."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"{option}: not an IPv6 address: {host!r}") from None
    if _HOSTNAME.fullmatch(host):
        return host
    raise ValueError(f"{option}: not a host name or IPv4 address: {host!r}")


def parse_base_url(text: str, option: str) -> BaseUrl:
    """`http://host:port[/prefix]`: plain HTTP, an explicit port, no query, fragment or user."""
    parts = urlsplit(text)
    if parts.scheme != "http" or not parts.netloc:
        raise ValueError(f"{option}: expected http://HOST:PORT[/prefix], got {text!r}")
    if parts.query or parts.fragment or "@" in parts.netloc or "?" in text or "#" in text:
        raise ValueError(f"{option}: no user, query or fragment allowed: {text!r}")
    path = parts.path.rstrip("/")
    if not _PATH.fullmatch(path) or any(seg in (".", "..") for seg in path.split("/")):
        raise ValueError(f"{option}: the path may hold letters, digits and -._~ only: {text!r}")
    return BaseUrl(parse_address(parts.netloc, option), path)


def check_header_name(name: str, option: str) -> None:
    """Letters and digits in `-`-separated words, not a header the proxies manage themselves."""
    if not _HEADER.fullmatch(name):
        raise ValueError(f"{option}: {name!r}: use letters, digits and single '-' (no '_')")
    if name.count("-") > MAX_SEPARATORS:
        raise ValueError(f"{option}: {name!r}: at most {MAX_SEPARATORS} '-' in a name")
    if name.lower() in _RESERVED:
        raise ValueError(f"{option}: {name!r} is managed by the proxy itself")
