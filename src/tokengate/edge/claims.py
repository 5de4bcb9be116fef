"""Introspected claims as request headers for the upstream (introspect mode; RFC 7662 §2.2).

Sans-I/O. The upstream trusts these headers only because the gateway removes every copy a
client sent (on every request, protected path or not) before adding its own.
Values are the claim's UTF-8 bytes with control characters removed, so no claim an
authorization server returns can split a header or inject another one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tokengate.resource.protocol.claims import TokenClaims

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 field-name

_CLAIMS: Mapping[str, Callable[[TokenClaims], object]] = {
    "sub": lambda c: c.sub,
    "client_id": lambda c: c.client_id,
    "scope": lambda c: c.scope,
    "username": lambda c: c.username,
    "aud": lambda c: " ".join(c.aud),
    "iss": lambda c: c.iss,
    "exp": lambda c: c.exp,
    "iat": lambda c: c.iat,
    "jti": lambda c: c.jti,
    "token_type": lambda c: c.token_type,
}
SUPPORTED_CLAIMS = frozenset(_CLAIMS)


@dataclass(frozen=True, slots=True)
class ClaimHeader:
    """Send claim `claim` upstream in header `name`."""

    name: str
    claim: str

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.name):
            raise ValueError(f"not a valid header name: {self.name!r}")
        if self.claim not in _CLAIMS:
            raise ValueError(f"unknown claim {self.claim!r}; one of {sorted(_CLAIMS)}")

    @classmethod
    def parse(cls, text: str) -> ClaimHeader:
        """`"X-Auth-Subject=sub"` → `ClaimHeader("X-Auth-Subject", "sub")`."""
        name, sep, claim = text.partition("=")
        if not sep:
            raise ValueError(f"expected HEADER=CLAIM, got {text!r}")
        return cls(name.strip(), claim.strip())

    @property
    def key(self) -> bytes:
        """The lower-case name with `-` for `_`, as header stripping compares names."""
        return self.name.lower().replace("_", "-").encode("ascii")


DEFAULT_CLAIM_HEADERS = (
    ClaimHeader("X-Auth-Subject", "sub"),
    ClaimHeader("X-Auth-Client-Id", "client_id"),
    ClaimHeader("X-Auth-Scope", "scope"),
)


def claim_header_keys(headers: Iterable[ClaimHeader]) -> frozenset[bytes]:
    """The names to strip from every client request."""
    return frozenset(header.key for header in headers)


def render_claim_headers(
    claims: TokenClaims, headers: Iterable[ClaimHeader]
) -> list[tuple[bytes, bytes]]:
    """One header per claim present in `claims`; absent or empty claims send nothing."""
    out: list[tuple[bytes, bytes]] = []
    for header in headers:
        value = _CLAIMS[header.claim](claims)
        if value is None:
            continue
        encoded = _CONTROL.sub(b"", str(value).encode("utf-8")).strip()
        if encoded:
            out.append((header.name.lower().encode("ascii"), encoded))
    return out
