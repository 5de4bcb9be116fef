"""Allow / 401 / 403 from claims (RFC 7662 §4, RFC 6750 §3.1)."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.decision import authorize
from tokengate.resource.protocol.errors import InsufficientScope, InvalidToken
from tokengate.resource.testing import claims

NOW = 1_000_000.0


def test_active_token_with_scopes_is_allowed() -> None:
    """An active, unexpired token holding the scopes passes."""
    granted = claims(scope="read write", exp=int(NOW) + 10)
    assert authorize(granted, required_scopes=["read"], now=NOW) is granted


@pytest.mark.parametrize(
    ("token", "audience"),
    [
        pytest.param(claims(active=False), None, id="rfc7662-inactive"),
        pytest.param(claims(exp=int(NOW)), None, id="rfc7662-4-expired-at-exp"),
        pytest.param(claims(exp=int(NOW) - 1), None, id="rfc7662-4-expired"),
        pytest.param(claims(nbf=int(NOW) + 1), None, id="rfc7662-4-not-yet-valid"),
        pytest.param(
            claims(aud="https://other.example"), "https://rs.example", id="wrong-audience"
        ),
        pytest.param(claims(), "https://rs.example", id="no-audience"),
    ],
)
def test_invalid_tokens_are_401(token: TokenClaims, audience: str | None) -> None:
    """Inactive, expired, early or foreign tokens → `invalid_token`."""
    with pytest.raises(InvalidToken) as caught:
        authorize(token, now=NOW, audience=audience)
    assert caught.value.status_code == 401


def test_audience_match_is_allowed() -> None:
    """A token listing this resource server in `aud` passes the audience check."""
    token = claims(aud=["https://rs.example", "x"])
    assert authorize(token, now=NOW, audience="https://rs.example") is token


def test_missing_scope_is_403_naming_required_scopes() -> None:
    """RFC 6750 §3.1: `insufficient_scope` with the scopes the resource needs."""
    with pytest.raises(InsufficientScope) as caught:
        authorize(claims(scope="read"), required_scopes=["write", "read"], now=NOW)
    assert caught.value.status_code == 403
    assert caught.value.scope == "read write"


def test_expiry_is_checked_before_scope() -> None:
    """An expired token is 401 even when it also lacks the scope."""
    with pytest.raises(InvalidToken):
        authorize(claims(scope="", exp=int(NOW) - 5), required_scopes=["write"], now=NOW)
