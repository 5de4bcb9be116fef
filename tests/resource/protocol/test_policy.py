"""Path-scoped protection and per-route scopes."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tokengate.resource.protocol.policy import Policy, Requirement, Rule, compile_pattern


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        pytest.param("/auth-api/**", "/auth-api/hello", True, id="double-star-child"),
        pytest.param("/auth-api/**", "/auth-api/a/b/c", True, id="double-star-deep"),
        pytest.param("/auth-api/**", "/auth-api", True, id="double-star-prefix-itself"),
        pytest.param("/auth-api/**", "/auth-api/", True, id="double-star-trailing-slash"),
        pytest.param("/auth-api/**", "/auth-apix", False, id="double-star-not-a-prefix"),
        pytest.param("/auth-api/**", "/public/auth-api/x", False, id="anchored-at-start"),
        pytest.param("/x/*", "/x/a", True, id="single-star"),
        pytest.param("/x/*", "/x/a/b", False, id="single-star-one-segment"),
        pytest.param("/x/*/y", "/x/a/y", True, id="single-star-middle"),
        pytest.param("/files/*.txt", "/files/a.txt", True, id="star-within-segment"),
        pytest.param("/a.b", "/aXb", False, id="dot-is-literal"),
        pytest.param("/**", "/anything/at/all", True, id="everything"),
    ],
)
def test_patterns(pattern: str, path: str, matches: bool) -> None:
    """Globs: `*` within a segment, `**` across segments, trailing `/**` includes the prefix."""
    assert (compile_pattern(pattern).fullmatch(path) is not None) is matches


def test_pattern_must_be_absolute() -> None:
    """A pattern without a leading slash is a configuration error."""
    with pytest.raises(ValueError, match="start with"):
        compile_pattern("auth-api/**")


def _example() -> Policy:
    return Policy(
        [
            Rule("/auth-api/public-info", public=True),
            Rule("/auth-api/hello", methods=["GET"], scopes=["read"]),
            Rule("/auth-api/items", methods=["POST"], scopes=["write"]),
            Rule("/auth-api/**"),
        ]
    )


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("GET", "/public/ping", None, id="unprotected-path"),
        pytest.param("GET", "/auth-api/hello", Requirement(frozenset({"read"})), id="route-scope"),
        pytest.param("HEAD", "/auth-api/hello", Requirement(frozenset({"read"})), id="head-is-get"),
        pytest.param("POST", "/auth-api/hello", Requirement(), id="other-method-falls-through"),
        pytest.param(
            "POST", "/auth-api/items", Requirement(frozenset({"write"})), id="method-rule"
        ),
        pytest.param("get", "/auth-api/hello", Requirement(frozenset({"read"})), id="method-case"),
        pytest.param("GET", "/auth-api/me", Requirement(), id="catch-all-authenticated"),
        pytest.param("GET", "/auth-api/public-info", None, id="public-rule-first"),
    ],
)
def test_first_matching_rule_decides(method: str, path: str, expected: Requirement | None) -> None:
    """Rules are tried in order; unmatched paths pass untouched."""
    assert _example().requirement(method, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/public/../auth-api/hello", id="dot-dot"),
        pytest.param("//auth-api/hello", id="double-slash"),
        pytest.param("/./auth-api/hello", id="dot"),
        pytest.param("/public/..;/auth-api/hello", id="tomcat-dot-dot-semicolon"),
        pytest.param("/auth-api;jsessionid=x/hello", id="path-parameter"),
        pytest.param("/public/%2e%2e/auth-api/hello", id="double-encoded-dot-dot"),
        pytest.param("/public%2f..%2fauth-api/hello", id="double-encoded-slash"),
        pytest.param("/public\\..\\auth-api/hello", id="backslashes"),
        pytest.param("auth-api/hello", id="no-leading-slash"),
        pytest.param("/x/../auth-api/hello//..", id="rfc3986-keeps-empty-segments"),
        pytest.param("/x/../auth-api/hello////../../..", id="rfc3986-dot-dot-pops-empty"),
    ],
)
def test_non_normalized_paths_get_the_stricter_answer(path: str) -> None:
    """A path a router might normalize is protected as if it were normalized."""
    assert _example().requirement("GET", path) == Requirement(frozenset({"read"}))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"/x%2Fy/../auth-api/hello", id="encoded-slash-shifts-dot-dot"),
        pytest.param(b"/x%2fy/%2E%2E/auth-api/hello", id="encoded-dots-too"),
    ],
)
def test_raw_path_is_resolved_before_decoding_too(raw: bytes) -> None:
    """`/x%2Fy/../a` decodes to `/x/a` but resolves (RFC 3986, httpx) to `/a`: both count."""
    path = unquote(raw.decode())
    assert _example().requirement("GET", path) is None  # the decoded path alone looks public
    assert _example().requirement("GET", path, raw) == Requirement(frozenset({"read"}))


def test_normalization_never_loosens_protection() -> None:
    """A protected raw path stays protected even if it normalizes to a public one."""
    assert _example().requirement("GET", "/auth-api/../public/ping") == Requirement()


def test_protect_shortcut() -> None:
    """`Policy.protect` requires the same scopes on every pattern."""
    policy = Policy.protect("/a/**", "/b", scopes=["admin"])
    assert policy.requirement("GET", "/a/x") == Requirement(frozenset({"admin"}))
    assert policy.requirement("GET", "/b") == Requirement(frozenset({"admin"}))
    assert policy.requirement("GET", "/c") is None
    assert "admin" in repr(policy.rules[0])


def test_decisions_are_memoized_within_a_bound() -> None:
    """Repeated paths are answered from the memo, identically; client-chosen paths cannot
    grow it past its bound."""
    policy = Policy.protect("/auth-api/**", scopes=["read"])
    first = policy.requirement("GET", "/auth-api/x", b"/auth-api/x")
    assert first == Requirement(frozenset({"read"}))
    assert policy.requirement("GET", "/auth-api/x", b"/auth-api/x") is first
    assert policy.requirement("GET", "/public", b"/public") is None
    for i in range(Policy.MEMO_ENTRIES * 2):
        path = f"/auth-api/{i}"
        assert policy.requirement("GET", path, path.encode()) == first
        assert len(policy._memo) <= Policy.MEMO_ENTRIES
    assert policy.requirement("GET", "/auth-api/../admin", b"/auth-api/../admin") == first
