"""DPoP proofs (RFC 9449 §4.2, §4.3), the key's thumbprint (RFC 7638) and `ath`. Sans-I/O.

`verify_proof` makes the checks of §4.3 that need no state, each a `ProofRefused` whose message is
safe to show the client (`error_description` of `invalid_dpop_proof`):

- one compact JWS of at most `MAX_PROOF_LENGTH` characters (refused before it is parsed);
- header `typ` is `dpop+jwt`, `alg` is asymmetric and allowed (`none` and HMAC never: the
  public key can never serve as an HMAC secret), `jwk` a public RSA (≥ 2048 bits), EC P-256
  or OKP Ed25519 key of the `alg`'s kind (private members and `oct` refused), and the
  signature verifies with it;
- claims `jti`, `htm` (= the method, case-sensitive), `htu` (= the URL, compared after
  `normalize_htu`), `iat` (not more than `clock_skew` ahead nor `max_age` behind `now`);
- `ath` when an access token is given (§4.3 step 12), `nonce` when the caller asks (§8:
  `NonceRequired`, which is `use_dpop_nonce`).

That the `jti` was never seen is the caller's check, against a replay store, until
`VerifiedProof.replay_until`. joserfc does the JWS work.

A client signs every proof with the same key, so the imported key and its thumbprint are kept per
protected-header segment (`KEY_MEMO_ENTRIES`, cleared when full): the segment's bytes fix the
header, so a memo hit is exactly what importing it again would give (a pure memo, like `re`'s
pattern cache); it saves about a third of a proof's verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokengate.core import client_assertion
from tokengate.core.jose import LimitedRegistry

ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
PROOF_TYPE = "dpop+jwt"
HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"
MAX_PROOF_LENGTH = 8192  # a proof carrying a 4096-bit RSA jwk and signature is under 3 KiB
MAX_JTI_LENGTH = 512
_KEY_KIND: dict[str, type] = {"ES256": ECKey, "RS256": RSAKey, "PS256": RSAKey, "EdDSA": OKPKey}
_REFUSED_HEADERS = frozenset({"crit", "b64", "x5u", "x5c", "jku", "kid"})
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_REGISTRY = LimitedRegistry(ALGORITHMS, max_header_length=MAX_PROOF_LENGTH)
KEY_MEMO_ENTRIES = 1024
_KEYS: dict[str, tuple[Any, str]] = {}  # protected-header segment -> (imported key, thumbprint)


class ProofRefused(Exception):
    """The DPoP proof fails a check (`invalid_dpop_proof`); the message is safe to show."""


class NonceRequired(ProofRefused):
    """The server wants a proof with a (fresh) nonce of its own (§8: `use_dpop_nonce`)."""


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a valid proof leaves: the key to bind to and what the replay check needs."""

    jkt: str
    jti: str
    issued_at: int
    replay_until: int


def replay_key(jkt: str, jti: str) -> str:
    """The replay store's key of one proof: `dpop:` and the SHA-256 of (jkt, jti), a form no
    `client_assertion.replay_key` (64 hex characters) can take."""
    digest = hashlib.sha256(f"{jkt}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()
    return "dpop:" + digest


def thumbprint(jwk: Mapping[str, object]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ValueError("the JWK has no RFC 7638 thumbprint")
    required = {m: jwk[m] for m in members}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(token: str) -> str:
    """`ath` (§4.2): base64url of the SHA-256 of the token's ASCII octets, unpadded."""
    return _b64(hashlib.sha256(token.encode("ascii", "surrogateescape")).digest())


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    nonce: Callable[[str], bool] | None = None,
    max_age: int = 300,
    clock_skew: int = 30,
    algorithms: Collection[str] = ALGORITHMS,
) -> VerifiedProof:
    """Verify a DPoP proof for a request (§4.3); `ProofRefused` (or `NonceRequired`) says why."""
    claims, jkt = _verified_jws(proof, algorithms)
    _check_request(claims, method, url)
    issued_at = _check_time(claims, now, max_age, clock_skew)
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise ProofRefused("the DPoP proof's ath does not match the access token")
    if nonce is not None and not _nonce_ok(claims.get("nonce"), nonce):
        raise NonceRequired("a DPoP nonce from this server is required")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise ProofRefused("the DPoP proof needs a jti")
    return VerifiedProof(jkt, jti, math.floor(issued_at), math.ceil(issued_at) + max_age)


def _verified_jws(proof: str, algorithms: Collection[str]) -> tuple[dict[str, Any], str]:
    """The claims and the key's thumbprint of a proof whose header and signature are good."""
    obj = _compact(proof)
    header = obj.headers()
    jwk = _check_header(header, algorithms)
    key, jkt = _memoized_key(proof[: proof.index(".")], jwk, str(header["alg"]))
    _check_signature(obj, key, algorithms)
    return _claims(obj.payload), jkt


def _memoized_key(segment: str, jwk: dict[str, Any], alg: str) -> tuple[Any, str]:
    """`_public_key(jwk, alg)` and the thumbprint, kept per header segment (see the docstring)."""
    found = _KEYS.get(segment)
    if found is not None:
        return found
    key = _public_key(jwk, alg)
    try:
        jkt = thumbprint(jwk)
    except ValueError:
        raise ProofRefused("the DPoP proof's jwk has no thumbprint") from None
    if len(_KEYS) >= KEY_MEMO_ENTRIES:
        _KEYS.clear()
    _KEYS[segment] = (key, jkt)
    return key, jkt


def _compact(proof: str) -> jws.CompactSignature:
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH:
        raise ProofRefused("the DPoP proof is too large")
    if proof.count(".") != 2:
        raise ProofRefused("the DPoP proof must be a compact JWS")
    try:
        return jws.extract_compact(proof.encode("ascii"), registry=_REGISTRY)
    except (JoseError, ValueError, TypeError, RecursionError):  # JSON nested thousands deep
        raise ProofRefused("the DPoP proof is not a valid JWS") from None


def _check_signature(obj: jws.CompactSignature, key: Any, algorithms: Collection[str]) -> None:
    registry = (
        _REGISTRY
        if tuple(algorithms) == ALGORITHMS
        else LimitedRegistry(_allowed(algorithms), max_header_length=MAX_PROOF_LENGTH)
    )
    try:
        valid = jws.validate_compact(obj, key, registry=registry)
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise ProofRefused("the DPoP proof's signature does not verify with its jwk")


def _claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise ProofRefused("the DPoP proof's payload is not a JSON object")
    return claims


def _allowed(algorithms: Collection[str]) -> tuple[str, ...]:
    return tuple(a for a in ALGORITHMS if a in algorithms)


def _check_header(header: dict[str, Any], algorithms: Collection[str]) -> dict[str, Any]:
    if header.get("typ") != PROOF_TYPE:
        raise ProofRefused(f"the DPoP proof's typ must be {PROOF_TYPE}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _allowed(algorithms):
        raise ProofRefused("the DPoP proof's alg is not supported")
    if _REFUSED_HEADERS & header.keys():
        raise ProofRefused("the DPoP proof's header has members that are not allowed")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise ProofRefused("the DPoP proof's header needs a jwk")
    return jwk


def _public_key(jwk: dict[str, Any], alg: str) -> Any:
    try:
        key = client_assertion.public_key(jwk)
    except client_assertion.BadJwks as exc:
        raise ProofRefused(f"the DPoP proof's jwk is not usable: {exc}") from None
    if not isinstance(key, _KEY_KIND[alg]):
        raise ProofRefused("the DPoP proof's jwk does not fit its alg")
    return key


def _check_request(claims: dict[str, Any], method: str, url: str) -> None:
    if claims.get("htm") != method:
        raise ProofRefused("the DPoP proof's htm does not match the request method")
    htu = claims.get("htu")
    # The exact URL needs no normalising (what clients send, and the hot path).
    if not isinstance(htu, str) or (htu != url and _normalized_or_none(htu) != normalize_htu(url)):
        raise ProofRefused("the DPoP proof's htu does not match the request URL")


def _check_time(claims: dict[str, Any], now: float, max_age: int, clock_skew: int) -> float:
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or not math.isfinite(iat):
        raise ProofRefused("the DPoP proof's iat must be a NumericDate")
    if iat > now + clock_skew:
        raise ProofRefused("the DPoP proof's iat is in the future")
    if iat < now - max_age:
        raise ProofRefused("the DPoP proof is too old")
    return float(iat)


def _nonce_ok(value: object, accept: Callable[[str], bool]) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_JTI_LENGTH and accept(value)


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_htu(url: str) -> str:
    """The URL as `htu` is compared (§4.3 steps 9-10): without query and fragment, after RFC 3986
    §6.2.2 (case, percent-encoding, dot segments) and §6.2.3 (default port, empty path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProofRefused("the DPoP proof's htu is not a valid URL") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ProofRefused("the DPoP proof's htu must be an http(s) URL")
    host = _percent(host).lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{_percent(parts.netloc.rpartition('@')[0])}@{netloc}"
    path = _remove_dot_segments(_percent(parts.path)) or "/"
    return f"{scheme}://{netloc}{path}"


def _normalized_or_none(url: str) -> str | None:
    try:
        return normalize_htu(url)
    except ProofRefused:
        return None


def _percent(text: str) -> str:
    """Decode percent-encoded unreserved characters, uppercase the rest (RFC 3986 §6.2.2.2)."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(one, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on the path of an http(s) URL (empty or absolute)."""
    if not path.startswith("/"):
        return path
    segments = path.split("/")[1:]
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)
