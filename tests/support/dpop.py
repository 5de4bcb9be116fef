"""A DPoP client key for tests: signs RFC 9449 §4.2 proofs with joserfc; and the challenges
every resource-server refusal offers (RFC 9449 §7.1).

Unlike the public `tokengate.resource.testing.DPoPKey`, which signs only well-formed proofs,
this one signs whatever claims a test or a fuzz strategy gives (`iat` or `jti` of any JSON type
or absent, `htm`/`htu` replaced): the server tests need malformed proofs signed correctly."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokengate.core import dpop

ALGS = " ".join(dpop.ALGORITHMS)
_KEYS: dict[str, Any] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
}


class DpopKey:
    """One client key pair and the proofs it signs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key = _KEYS[alg]()

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint tokens get bound to."""
        return dpop.thumbprint(self.key.as_dict(private=False))

    def proof(
        self,
        url: str,
        method: str = "POST",
        *,
        now: float | None = None,
        nonce: str | None = None,
        access_token: str | None = None,
        **claims: Any,
    ) -> str:
        """A fresh proof for `method` `url` (a new `jti` unless `claims` gives one)."""
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(12),
            "htm": method,
            "htu": url,
            "iat": int(time.time() if now is None else now),
        }
        if nonce is not None:
            payload["nonce"] = nonce
        if access_token is not None:
            payload["ath"] = dpop.access_token_hash(access_token)
        payload.update(claims)
        header = {"typ": dpop.PROOF_TYPE, "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        with warnings.catch_warnings():  # joserfc's EdDSA deprecation warning
            warnings.simplefilter("ignore")
            body = json.dumps(payload).encode()
            return jws.serialize_compact(header, body, self.key, algorithms=[self.alg])


def bare_challenges(realm: str) -> str:
    """`WWW-Authenticate` for a request without a token: both schemes, no error code."""
    return f'Bearer realm="{realm}", DPoP realm="{realm}", algs="{ALGS}"'
