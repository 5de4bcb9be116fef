"""What the decision service protects and what it answers with."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokengate.edge.claims import DEFAULT_CLAIM_HEADERS, ClaimHeader
from tokengate.resource.protocol.policy import Policy
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER
from tokengate.resource.protocol.responses import DEFAULT_REALM

DECIDE_PATH = "/decide"
ENVOY_PREFIX = "/envoy"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


@dataclass(frozen=True, slots=True)
class AuthzSettings:
    """The policy (matched on the original request), where the token is, what a 200 carries."""

    policy: Policy = field(default_factory=lambda: Policy.protect("/**"))
    token_header: str = DEFAULT_TOKEN_HEADER
    claim_headers: tuple[ClaimHeader, ...] = DEFAULT_CLAIM_HEADERS
    realm: str = DEFAULT_REALM
