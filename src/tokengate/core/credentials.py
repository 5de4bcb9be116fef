"""Generation, format checks and hashing of tokens and client secrets.

RFC 6749 §10.10 asks that guessing a token be at most 2^-128 likely (SHOULD 2^-160): values
carry 256 bits from `secrets`. A prefix lets secret scanners find leaked values and a CRC32
suffix lets them (and us) reject look-alikes without a database round trip.

Storage keeps SHA-256 digests only. A salt or a slow/keyed hash defends *low-entropy* inputs
against dictionary attacks; these values are machine-made with 256 bits of entropy, so the
preimage resistance of SHA-256 alone makes a database dump useless, and the same unkeyed
digest lets resource servers key caches and match revocation events without ever holding
the raw token (RFC 9700 §4.9.3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import zlib

ACCESS_TOKEN_PREFIX = "tgat_"
CLIENT_SECRET_PREFIX = "tgcs_"
CLIENT_ID_PREFIX = "tgc_"
ADMIN_TOKEN_PREFIX = "tgadm_"  # admin and initial access tokens (RFC 7591 §3)
REGISTRATION_TOKEN_PREFIX = "tgrat_"  # RFC 7592 registration access tokens
_ENTROPY_BYTES = 32
_JTI_BYTES = 16
_BODY = r"[A-Za-z0-9_-]{43}"
_CRC = r"[0-9a-f]{8}"
_TOKEN_RE = re.compile(rf"{ACCESS_TOKEN_PREFIX}{_BODY}{_CRC}")
_SECRET_RE = re.compile(rf"{CLIENT_SECRET_PREFIX}{_BODY}{_CRC}")


def _checksummed(prefix: str, entropy: bytes | None = None) -> str:
    raw = secrets.token_bytes(_ENTROPY_BYTES) if entropy is None else entropy
    body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{prefix}{body}{_crc(prefix + body)}"


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode()) & 0xFFFFFFFF:08x}"


def _well_formed(value: str, pattern: re.Pattern[str]) -> bool:
    return pattern.fullmatch(value) is not None and _crc(value[:-8]) == value[-8:]


def new_access_token() -> str:
    """A fresh opaque access token: `tgat_` + 256 random bits + CRC32."""
    return _checksummed(ACCESS_TOKEN_PREFIX)


def new_access_token_and_jti() -> tuple[str, str]:
    """A fresh access token and a `jti` for it, from one read of the OS CSPRNG: the token's
    256 bits and the jti's 128 are disjoint parts of it, so they are as unrelated as two reads
    (one `getrandom` system call per issued token instead of two)."""
    raw = os.urandom(_ENTROPY_BYTES + _JTI_BYTES)
    return _checksummed(ACCESS_TOKEN_PREFIX, raw[:_ENTROPY_BYTES]), raw[_ENTROPY_BYTES:].hex()


def new_client_secret() -> str:
    """A fresh client secret: `tgcs_` + 256 random bits + CRC32."""
    return _checksummed(CLIENT_SECRET_PREFIX)


def new_admin_token() -> str:
    """A fresh admin or initial access token: `tgadm_` + 256 random bits + CRC32."""
    return _checksummed(ADMIN_TOKEN_PREFIX)


def new_registration_token() -> str:
    """A fresh RFC 7592 registration access token: `tgrat_` + 256 random bits + CRC32."""
    return _checksummed(REGISTRATION_TOKEN_PREFIX)


def new_public_id(prefix: str) -> str:
    """A short random public identifier (names an admin token in the audit log)."""
    return prefix + secrets.token_hex(8)


def new_client_id() -> str:
    """A client identifier; public, but random so it cannot be enumerated."""
    return CLIENT_ID_PREFIX + secrets.token_hex(12)


def new_jti() -> str:
    """A unique token identifier (RFC 7662 §2.2 `jti`), unrelated to the token value."""
    return secrets.token_hex(_JTI_BYTES)


def is_access_token_format(value: str) -> bool:
    """True when `value` looks like one of our access tokens (cheap pre-check)."""
    return _well_formed(value, _TOKEN_RE)


def is_client_secret_format(value: str) -> bool:
    """True when `value` looks like one of our client secrets."""
    return _well_formed(value, _SECRET_RE)


def hash_value(value: str) -> str:
    """SHA-256 hex digest: the only form in which tokens and secrets are stored or sent."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# As long as a hex SHA-256 digest, so it compares in the same time, but not hex, so that no
# value's digest ever equals it: what a missing digest (`None`) and decoys are compared against.
UNMATCHABLE_DIGEST = "decoy-" + "z" * 58


def verify_secret(presented: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against a stored SHA-256 digest."""
    expected = stored_hash if stored_hash is not None else UNMATCHABLE_DIGEST
    matches = hmac.compare_digest(hash_value(presented), expected)
    return matches and stored_hash is not None
