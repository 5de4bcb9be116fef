"""Find the access token a request carries, and how (RFC 6750 §2.1, §3.1; RFC 9449 §4.1, §7.1).

Three places are read: a custom header (default `X-Access-Token`, the value being the bare
token), `Authorization: Bearer <b64token>` or `Authorization: DPoP <token68>`, and the `DPoP`
header (the proof). The answer is a `Presented`: the token, the proof, and the scheme — `DPoP`
when `Authorization` says so or when the custom header comes with a proof, else `Bearer`.

Refused: both token places present with different values, a header repeated, or a value that
is not a `b64token` → `invalid_request` (400); more than one `DPoP` header, or the `DPoP`
scheme without a proof → `invalid_dpop_proof` (401, RFC 9449 §4.3 check 1); a proof beside
`Authorization: Bearer` → `invalid_token` (a proof cannot turn a bearer presentation into a
bound one, and a bound token must not travel as a bearer one, §7.2). Neither token place
present → `MissingToken` (401, challenge without an error code). An `Authorization` header
with another scheme (e.g. `Basic` meant for a proxy) is ignored. Query-string and form-body
tokens (RFC 6750 §2.2, §2.3) are not accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from tokengate.resource.protocol.errors import (
    BEARER,
    DPOP,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingToken,
)

DEFAULT_TOKEN_HEADER = "X-Access-Token"
PROOF_HEADER = "DPoP"
MAX_TOKEN_LENGTH = 4096
MAX_PROOF_LENGTH = 8192
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEMES = {"bearer": BEARER, "dpop": DPOP}


class Presented(NamedTuple):
    """The token a request carries, the DPoP proof beside it (if any), and the scheme."""

    token: str
    proof: str | None = None
    scheme: str = BEARER


_TUPLE_NEW = tuple.__new__


def resolve_credentials(
    headers: Iterable[tuple[str, str]], *, token_header: str = DEFAULT_TOKEN_HEADER
) -> Presented:
    """The one token in `headers` (name, value pairs; names in any case), and its proof."""
    custom_name = token_header.lower()
    authorization: list[tuple[str, str]] = []
    custom: list[str] = []
    proofs: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "authorization":
            authorization.extend(_credentials(value))
        elif lowered == custom_name:
            custom.append(_checked(value.strip(), token_header))
        elif lowered == "dpop":
            proofs.append(value.strip())
    return _single(authorization, custom, proofs, token_header)


def _credentials(value: str) -> list[tuple[str, str]]:
    scheme, _, rest = value.strip().partition(" ")
    known = _SCHEMES.get(scheme.lower())
    if known is None:
        return []
    return [(known, _checked(rest.strip(), "Authorization"))]


def _checked(token: str, header: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.fullmatch(token):
        raise InvalidRequest(f"malformed {header} header")
    return token


def _single(
    authorization: list[tuple[str, str]], custom: list[str], proofs: list[str], token_header: str
) -> Presented:
    if len(authorization) > 1 or len(custom) > 1:
        raise InvalidRequest("the access token header is repeated")
    if authorization and custom and authorization[0][1] != custom[0]:
        raise InvalidRequest(f"Authorization and {token_header} carry different tokens")
    if not authorization and not custom:
        raise MissingToken("an access token is required")
    if len(proofs) > 1:
        raise InvalidDPoPProof("more than one DPoP header")
    proof = proofs[0] if proofs else None
    if authorization:
        scheme, token = authorization[0]
    else:
        scheme, token = (BEARER if proof is None else DPOP), custom[0]
    if scheme == DPOP and not proof:
        raise InvalidDPoPProof("the DPoP scheme needs a DPoP proof header")
    if scheme == BEARER and proof is not None:
        raise InvalidToken("a DPoP proof needs the DPoP authorization scheme")
    if proof is not None and len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDPoPProof("the DPoP proof is too large")
    return Presented(token, proof, scheme)


class RawCredentialReader:
    """`resolve_credentials` for raw ASGI headers (byte names, lower-case from the server, byte
    values): the hot path of the ASGI adapter and the decision service. One pass; only the
    three names that matter are decoded, and the common case (one custom header, or one
    `Authorization`) skips building the pair list `resolve_credentials` takes.
    """

    def __init__(self, token_header: str = DEFAULT_TOKEN_HEADER) -> None:
        self.token_header = token_header
        self._custom = token_header.lower().encode("latin-1")
        self._wanted = frozenset({b"authorization", b"dpop", self._custom})

    def __call__(self, headers: Sequence[tuple[bytes, bytes]]) -> Presented:
        """The one token in `headers` and its proof, with `resolve_credentials`'s errors."""
        wanted = self._wanted
        found = [
            (name, value)
            for name, value in headers
            if name in wanted or (not name.islower() and name.lower() in wanted)
        ]
        if len(found) == 1:  # the common case: one token header, no proof
            name, value = found[0]
            if name == self._custom:
                token = _checked(value.decode("latin-1").strip(), self.token_header)
                return _TUPLE_NEW(Presented, (token, None, BEARER))  # no Python-level __new__
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = _checked(value[7:].decode("latin-1").strip(), "Authorization")
                return _TUPLE_NEW(Presented, (token, None, BEARER))
        pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in found]
        return resolve_credentials(pairs, token_header=self.token_header)
