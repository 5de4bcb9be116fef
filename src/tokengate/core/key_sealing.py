"""Making signing keys and sealing their private halves (RFC 9701 §5 keys). Sans-I/O.

The private JWK is sealed with AES-256-GCM under a key-encryption key (KEK) that never enters
the database, with the key's `kid` as associated data, so a sealed key cannot be moved to
another row and a database dump can sign nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, RSAKey

from tokengate.core.signing_keys import ALGORITHMS, DEFAULT_ALG, SigningKey

KEK_BYTES = 32  # AES-256
_SEALED_PREFIX = "v1."
_NONCE_BYTES = 12


class KeyUnusable(Exception):
    """A sealed key that this key-encryption key cannot open (wrong KEK, or tampered)."""


def parse_kek(text: str) -> bytes:
    """A key-encryption key as written in the environment or a file: 32 bytes, base64url or
    hex; `ValueError` for anything else."""
    value = text.strip()
    candidates: list[bytes] = []
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(value))
    for raw in candidates:
        if len(raw) == KEK_BYTES:
            return raw
    raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes, base64url or hex")


def new_kek() -> str:
    """A fresh key-encryption key in its written (base64url) form."""
    return base64.urlsafe_b64encode(os.urandom(KEK_BYTES)).rstrip(b"=").decode("ascii")


def seal(kek: bytes, kid: str, plaintext: bytes) -> str:
    """AES-256-GCM of `plaintext`, bound to `kid` as associated data."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, plaintext, kid.encode("utf-8"))
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(kek: bytes, kid: str, sealed: str) -> bytes:
    """The inverse of `seal`; `KeyUnusable` if the KEK or the `kid` is not the sealing one."""
    if not sealed.startswith(_SEALED_PREFIX):
        raise KeyUnusable(f"signing key {kid}: unknown sealing format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_SEALED_PREFIX) :])
        return AESGCM(kek).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], kid.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError):
        raise KeyUnusable(
            f"signing key {kid} does not open with this key-encryption key"
            " (every replica must be given the same one)"
        ) from None


def generate(kek: bytes, now: int, *, alg: str = DEFAULT_ALG, delay: int = 0) -> SigningKey:
    """A new key of `alg`, sealed under `kek`, signing from `now + delay`."""
    if alg not in ALGORITHMS:
        raise ValueError(f"signing algorithm must be one of {', '.join(ALGORITHMS)}")
    private = RSAKey.generate_key(2048) if alg == "RS256" else ECKey.generate_key("P-256")
    public = private.as_dict(private=False)
    kid = thumbprint(public)
    public.update(kid=kid, alg=alg, use="sig")
    secret = json.dumps(private.as_dict(private=True)).encode("utf-8")
    return SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=json.dumps(public, sort_keys=True),
        sealed_private=seal(kek, kid, secret),
        created_at=now,
        active_at=now + delay,
    )


def thumbprint(public: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): a `kid` that names the key material."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[public["kty"]]
    canonical = json.dumps({k: public[k] for k in required}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
