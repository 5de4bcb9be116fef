"""The resource server's part of DPoP (RFC 9449 §4.3, §7.1): which URL a proof must name, and
the proof checks as `BearerError`s. Sans-I/O; the proof itself is `tokengate.core.dpop`'s.

`htu` must be the URL the client called. The path is the request target as sent; scheme and
host come from the request (an ASGI scope, a WSGI environ, or the `X-Forwarded-Proto` /
`X-Forwarded-Host` / `Host` a proxy set), checked against `ProofPolicy.origins` when given: a
proof for another origin never passes, and a request whose origin cannot be told is refused
(fail closed). With exactly one origin configured, a request that names none uses it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tokengate.core.dpop import ALGORITHMS, ProofRefused, VerifiedProof, verify_proof
from tokengate.resource.protocol.errors import InvalidDPoPProof
from tokengate.resource.protocol.resolver import Presented

_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


@dataclass(frozen=True, slots=True)
class ProofPolicy:
    """How proofs are checked: algorithms, the `iat` window, and the origins served."""

    algorithms: tuple[str, ...] = ALGORITHMS
    max_age: int = 120
    clock_skew: int = 30
    origins: tuple[str, ...] = ()
    allowed_origins: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.algorithms or not set(self.algorithms) <= set(ALGORITHMS):
            raise ValueError(f"DPoP algorithms must be some of {', '.join(ALGORITHMS)}")
        if self.max_age <= 0 or self.clock_skew < 0:
            raise ValueError("the DPoP max age must be > 0 and the clock skew >= 0")
        for origin in self.origins:
            if parse_origin(origin) is None:
                raise ValueError(f"not an origin (http[s]://host[:port]): {origin!r}")
        allowed = frozenset(o for o in map(parse_origin, self.origins) if o is not None)
        object.__setattr__(self, "allowed_origins", allowed)

    @property
    def algs(self) -> str:
        """The `algs` of the `DPoP` challenge (RFC 9449 §7.1)."""
        return " ".join(self.algorithms)


def parse_origin(text: str) -> str | None:
    """`scheme://host[:port]` lower-cased, default port dropped; None if it is not one."""
    scheme, sep, host = text.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES or not host or any(c in host for c in "/?#@\\ "):
        return None
    host = host.lower().removesuffix(_DEFAULT_PORTS[scheme])
    return f"{scheme}://{host}"


DEFAULT_PROOF_POLICY = ProofPolicy()


def request_url(
    scheme: str | None, host: str | None, raw_path: str, allowed: Collection[str] = ()
) -> str:
    """The URL a proof's `htu` must match: origin from `scheme` and `host` (checked against
    `allowed`), then the path as sent. `InvalidDPoPProof` when the origin cannot be told."""
    if host is None and len(allowed) == 1:
        origin: str | None = next(iter(allowed))
    elif scheme is None or host is None:
        origin = None
    else:
        origin = parse_origin(f"{scheme}://{host}")
    if origin is None:
        raise InvalidDPoPProof("the request's URL cannot be told to check the DPoP proof")
    if allowed and origin not in allowed:
        raise InvalidDPoPProof("the request's origin is not one this resource server serves")
    return origin + (raw_path if raw_path.startswith("/") else "/" + raw_path)


def check_proof(
    presented: Presented, *, method: str, url: str, now: float, policy: ProofPolicy
) -> VerifiedProof:
    """RFC 9449 §4.3 for the proof beside `presented.token` (`ath` included)."""
    if presented.proof is None:
        raise InvalidDPoPProof("the DPoP scheme needs a DPoP proof header")
    try:
        return verify_proof(
            presented.proof,
            method=method,
            url=url,
            now=now,
            access_token=presented.token,
            max_age=policy.max_age,
            clock_skew=policy.clock_skew,
            algorithms=policy.algorithms,
        )
    except ProofRefused as exc:
        raise InvalidDPoPProof(str(exc)) from None


def replay_key(proof: VerifiedProof) -> str:
    """The replay store's key: the `jti`, scoped to the key that signed it."""
    return f"{proof.jkt}:{proof.jti}"
