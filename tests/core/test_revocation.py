"""Token revocation rules (RFC 7009 §2.1 request, §2.2 response, §2.2.1 errors)."""

from __future__ import annotations

import pytest

from tests.core.records import NOW, make_client, make_token
from tokengate.core.credentials import hash_value, new_access_token
from tokengate.core.errors import InvalidRequest
from tokengate.core.forms import parse_form
from tokengate.core.models import AccessToken
from tokengate.core.revocation import may_revoke, token_hash_to_revoke

OURS = new_access_token()


def test_rfc_example_request_is_an_unknown_token() -> None:
    """§2.1 example `token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token`: not ours, a 200."""
    form = parse_form(b"token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token")
    assert token_hash_to_revoke(form) is None


@pytest.mark.parametrize(
    "hint",
    [
        pytest.param(None, id="no-hint"),
        pytest.param("access_token", id="rfc7009-2.1-access_token"),
        pytest.param("refresh_token", id="rfc7009-2.1-wrong-hint-extends-search"),
        pytest.param("unheard_of", id="rfc7009-2.2.1-unknown-hint-ignored"),
    ],
)
def test_hints_never_change_the_lookup(hint: str | None) -> None:
    """§2.1: whatever the hint, our token is looked up by its hash (never an error)."""
    form = {"token": [OURS], **({"token_type_hint": [hint]} if hint else {})}
    assert token_hash_to_revoke(form) == hash_value(OURS)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"token_type_hint=access_token", id="rfc7009-2.1-missing-token"),
        pytest.param(b"token=&token_type_hint=access_token", id="rfc6749-3.1-empty-token"),
    ],
)
def test_missing_token_is_invalid_request(body: bytes) -> None:
    """§2.1: `token` is REQUIRED; §2.2.1 error `invalid_request`."""
    with pytest.raises(InvalidRequest):
        token_hash_to_revoke(parse_form(body))


@pytest.mark.parametrize(
    ("token", "allowed"),
    [
        pytest.param(make_token(), True, id="own-live-token"),
        pytest.param(None, False, id="rfc7009-2.2-unknown-token"),
        pytest.param(make_token(client_id="another"), False, id="rfc7009-2.1-other-clients-token"),
        pytest.param(make_token(revoked_at=NOW), False, id="rfc7009-2.2-already-revoked"),
    ],
)
def test_may_revoke(token: AccessToken | None, allowed: bool) -> None:
    """§2.1: only the client the token was issued to revokes it; the rest change nothing."""
    assert may_revoke(token, make_client()) is allowed
