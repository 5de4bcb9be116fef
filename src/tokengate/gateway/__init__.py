"""The tokengate gateway: a streaming reverse proxy that passes tokens through or validates them.

`bypass` mode forwards every end-to-end header untouched (the custom token header included)
and leaves validation to the resource server. `introspect` mode validates tokens at the edge
with the resource-server library and hands the upstream the claims in headers, so services in
any language are protected::

    settings = GatewaySettings(upstream="http://127.0.0.1:8000", mode="introspect",
                               policy=build_policy(["/auth-api/**"]))
    app = create_gateway(settings, validator=create_validator(ValidatorSettings(...)))
"""

from tokengate.edge.claims import DEFAULT_CLAIM_HEADERS, SUPPORTED_CLAIMS, ClaimHeader
from tokengate.gateway.app import Gateway, create_gateway
from tokengate.gateway.proxy import Proxy
from tokengate.gateway.settings import (
    DEFAULT_METRICS_PATH,
    HEALTH_PATH,
    GatewaySettings,
    Mode,
    UpstreamPool,
    UpstreamTimeouts,
    build_policy,
    parse_listen,
    parse_scope_rule,
)

__all__ = [
    "DEFAULT_CLAIM_HEADERS",
    "DEFAULT_METRICS_PATH",
    "HEALTH_PATH",
    "SUPPORTED_CLAIMS",
    "ClaimHeader",
    "Gateway",
    "GatewaySettings",
    "Mode",
    "Proxy",
    "UpstreamPool",
    "UpstreamTimeouts",
    "build_policy",
    "create_gateway",
    "parse_listen",
    "parse_scope_rule",
]
