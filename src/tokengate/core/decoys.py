"""Decoy records: what a lookup that found nothing is checked against, so that "unknown" takes
the same steps, and the same time, as "known but not yours" (RFC 6749 §10.10, RFC 7009 §2.1,
RFC 7662 §4: the answers are equal, so the time taken must not tell them apart either).

A decoy can never pass a check: the client is disabled and its secret digest is not hex (no
SHA-256 digest equals it), the token is revoked, expired and was never valid. Code that falls
back to a decoy still tells the two cases apart with `is`, for the decision itself.
"""

from __future__ import annotations

from tokengate.core.credentials import UNMATCHABLE_DIGEST
from tokengate.core.models import AccessToken, Client

DECOY_CLIENT = Client(
    client_id="tgc_" + "0" * 24,
    name="decoy",
    secret_hash=UNMATCHABLE_DIGEST,
    scopes=frozenset({"decoy"}),
    audiences=("decoy",),
    disabled=True,
)

DECOY_TOKEN = AccessToken(
    token_hash=UNMATCHABLE_DIGEST,
    jti="0" * 32,
    client_id=DECOY_CLIENT.client_id,
    scopes=frozenset({"decoy"}),
    audiences=("decoy",),
    issued_at=0,
    expires_at=0,
    revoked_at=0,
)
