"""Gateway settings and the CLI's option syntaxes."""

from __future__ import annotations

import pytest

from tokengate.gateway import GatewaySettings, build_policy, parse_listen, parse_scope_rule
from tokengate.resource.protocol.policy import Requirement


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:8080", ("127.0.0.1", 8080), id="ipv4"),
        pytest.param("[::1]:9000", ("::1", 9000), id="ipv6"),
        pytest.param(":7000", ("127.0.0.1", 7000), id="port-only-is-loopback"),
        pytest.param("0.0.0.0:80", ("0.0.0.0", 80), id="all-interfaces"),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    """HOST:PORT forms accepted by --listen."""
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "host:70000"])
def test_parse_listen_rejects(text: str) -> None:
    """A missing or invalid port is refused."""
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_scope_rules_and_protected_patterns() -> None:
    """Scope rules come first (with methods), protected patterns after them."""
    policy = build_policy(
        ["/auth-api/**"],
        [parse_scope_rule("POST,PUT /auth-api/items=write admin"), parse_scope_rule("/x=read")],
    )
    assert policy.requirement("POST", "/auth-api/items") == Requirement(
        frozenset({"write", "admin"})
    )
    assert policy.requirement("GET", "/auth-api/items") == Requirement(frozenset())
    assert policy.requirement("GET", "/x") == Requirement(frozenset({"read"}))
    assert policy.requirement("GET", "/public/ping") is None


def test_nothing_configured_protects_everything() -> None:
    """No --protect and no --require-scope: every path needs a token."""
    assert build_policy([]).requirement("GET", "/anything") == Requirement(frozenset())
    assert build_policy([], [parse_scope_rule("/a=read")]).requirement("GET", "/b") is None


@pytest.mark.parametrize("text", ["/a", "/a=", "GET POST /a=read", "a=read"])
def test_parse_scope_rule_rejects(text: str) -> None:
    """Rules without scopes, with stray words, or with a relative pattern are refused."""
    with pytest.raises(ValueError, match=r"."):
        parse_scope_rule(text)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"upstream": "ftp://x"}, "http", id="scheme"),
        pytest.param({"upstream": "http://x/?a=1"}, "query", id="query"),
        pytest.param({"upstream": "http://x", "metrics_path": "/metrics"}, "_tokengate", id="m"),
    ],
)
def test_settings_validation(options: dict[str, str], message: str) -> None:
    """Bad upstream URLs and a metrics path outside the reserved prefix are refused."""
    with pytest.raises(ValueError, match=message):
        GatewaySettings(**options)  # type: ignore[arg-type]
