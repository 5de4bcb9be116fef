"""How long an introspection answer may be reused (RFC 7662 §4)."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.claims import INACTIVE, TokenClaims
from tokengate.resource.protocol.freshness import fresh_until, known_expired
from tokengate.resource.testing import claims

NOW = 1_000.0


@pytest.mark.parametrize(
    ("token", "options", "expected"),
    [
        pytest.param(claims(exp=1010), {}, 1010.0, id="rfc7662-4-bounded-by-exp"),
        pytest.param(claims(exp=9999), {}, NOW + 300, id="bounded-by-max-ttl"),
        pytest.param(claims(), {}, NOW + 300, id="no-exp-max-ttl"),
        pytest.param(claims(exp=1000), {}, None, id="expired-not-cached"),
        pytest.param(INACTIVE, {}, None, id="negative-off-by-default"),
        pytest.param(INACTIVE, {"negative_ttl": 5}, NOW + 5, id="negative-opt-in"),
        pytest.param(claims(exp=9999), {"cap": 2}, NOW + 2, id="ttl-cap"),
        pytest.param(claims(exp=9999), {"not_after": 1001}, 1001.0, id="not-after"),
        pytest.param(claims(exp=9999), {"cap": 0}, None, id="cap-zero-disables"),
    ],
)
def test_fresh_until(token: TokenClaims, options: dict[str, float], expected: float | None) -> None:
    """Positive: min(exp, max_ttl, cap); negative: only when opted in."""
    assert fresh_until(token, now=NOW, max_ttl=300, **options) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(claims(exp=1000), True, id="at-exp"),
        pytest.param(claims(exp=999), True, id="past-exp"),
        pytest.param(claims(exp=1001), False, id="before-exp"),
        pytest.param(claims(), False, id="no-exp"),
        pytest.param(INACTIVE, False, id="inactive-says-nothing-of-exp"),
    ],
)
def test_known_expired(token: TokenClaims, expected: bool) -> None:
    """Only an active answer whose `exp` has come says the token can never be valid again."""
    assert known_expired(token, NOW) is expected
