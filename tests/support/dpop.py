"""What the DPoP tests share: the challenges every refusal now offers (RFC 9449 §7.1)."""

from __future__ import annotations

from tokengate.core.dpop import ALGORITHMS

ALGS = " ".join(ALGORITHMS)


def bare_challenges(realm: str) -> str:
    """`WWW-Authenticate` for a request without a token: both schemes, no error code."""
    return f'Bearer realm="{realm}", DPoP realm="{realm}", algs="{ALGS}"'
