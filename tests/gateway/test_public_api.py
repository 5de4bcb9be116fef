"""The public names of `tokengate.gateway`."""

from __future__ import annotations

import tokengate.gateway as gateway

EXPECTED = {
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
}


def test_all_is_exactly_the_public_api() -> None:
    """`__all__` lists the public names, each importable."""
    assert set(gateway.__all__) == EXPECTED
    for name in gateway.__all__:
        assert hasattr(gateway, name)
