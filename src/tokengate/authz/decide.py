"""One decision: the original request and its headers in, the proxy's answer out.

The pipeline: the policy on the original method and target → the token (RFC 6750 §2.1, the
custom header or `Authorization: Bearer`; or RFC 9449 §7.1 with its `DPoP` proof, checked for
the original method and URL) → the validator (RFC 7662, cached) → 200 with the claims as
identity headers, or the RFC 6750 §3 refusal the proxy relays to the client. Every
answer carries a `result` label for the metrics.
"""

from __future__ import annotations

from tokengate.authz.settings import AuthzSettings
from tokengate.core.responses import Response
from tokengate.edge.claims import render_claim_headers
from tokengate.edge.original import OriginalRequest, forwarded_origin
from tokengate.resource.adapters import validated
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.dpop import request_url
from tokengate.resource.protocol.errors import (
    BearerError,
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    MissingToken,
    ServiceUnavailable,
)
from tokengate.resource.protocol.resolver import RawCredentialReader
from tokengate.resource.protocol.responses import render_error
from tokengate.resource.runtime.validator import Validator

_NO_STORE = ((b"cache-control", b"no-store"),)
UNPROTECTED = Response(200, b"", _NO_STORE)
MEMO_ENTRIES = 4096
RawHeaders = list[tuple[bytes, bytes]]


class Decider:
    """Decides for one settings object and one validator."""

    def __init__(self, settings: AuthzSettings, validator: Validator) -> None:
        self.settings = settings
        self.validator = validator
        self._token = RawCredentialReader(settings.token_header)
        self._answers: dict[int, tuple[TokenClaims, Response]] = {}

    async def decide(
        self, original: OriginalRequest, headers: RawHeaders, *, host_header: bytes = b"host"
    ) -> tuple[Response, str]:
        """The answer for `original`, and its result label; `host_header` names the header
        holding the original host (for the DPoP `htu`)."""
        s = self.settings
        requirement = s.policy.requirement(original.method, original.path, original.raw_path)
        if requirement is None:
            return UNPROTECTED, "unprotected"
        try:
            presented = self._token(headers)
            if presented.proof is None:  # Bearer (the resolver pairs DPoP with a proof)
                found = await self.validator.validate(presented.token, requirement.scopes)
            else:
                url = self._url(original, headers, host_header)
                found = await self.validator.validate_dpop(
                    presented, method=original.method, url=url, required_scopes=requirement.scopes
                )
            claims = validated(found)
        except BearerError as error:
            return self.refuse(error)
        return self._allowed(claims), "allowed"

    def _url(self, original: OriginalRequest, headers: RawHeaders, host_header: bytes) -> str:
        scheme, host = forwarded_origin(headers, host_header=host_header)
        path = original.raw_path.decode("latin-1")
        return request_url(scheme, host, path, self.validator.settings.dpop.allowed_origins)

    def _allowed(self, claims: TokenClaims) -> Response:
        """The 200 for `claims`, made once per cached claims object (a hit returns the same
        object, so identity is checked with `is`); bounded, cleared when full."""
        entry = self._answers.get(id(claims))
        if entry is not None and entry[0] is claims:
            return entry[1]
        identity = render_claim_headers(claims, self.settings.claim_headers)
        answer = Response(200, b"", (*_NO_STORE, *identity))
        if len(self._answers) >= MEMO_ENTRIES:
            self._answers.clear()
        self._answers[id(claims)] = (claims, answer)
        return answer

    def refuse(self, error: BearerError) -> tuple[Response, str]:
        """A refusal, rendered with the challenges of both schemes."""
        return render_error(error, self.settings.realm, self.validator.algs), result_of(error)


def result_of(error: BearerError) -> str:
    """The metrics label of a refusal."""
    if isinstance(error, MissingToken):
        return "missing_token"
    if isinstance(
        error, InvalidRequest | InsufficientScope | ServiceUnavailable | InvalidDPoPProof
    ):
        return error.error or "refused"
    return "invalid_token"
