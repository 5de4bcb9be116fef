"""RFC 7009 token revocation rules.

A client may revoke only tokens issued to it (§2.1). For any other token the endpoint answers
200 exactly as for an unknown one and changes nothing: an error would tell the caller that the
value is a live token of someone else, which turns the endpoint into a token-scanning oracle.
"""

from __future__ import annotations

from tokengate.core.credentials import hash_value, is_access_token_format
from tokengate.core.decoys import DECOY_TOKEN
from tokengate.core.errors import InvalidRequest
from tokengate.core.forms import single
from tokengate.core.models import AccessToken, Client


def token_hash_to_revoke(form: dict[str, list[str]]) -> str | None:
    """§2.1: `token` is required; hints are optional and unknown ones ignored (§2.2.1)."""
    token = single(form, "token")
    if token is None:
        raise InvalidRequest("missing token")
    return hash_value(token) if is_access_token_format(token) else None


def may_revoke(token: AccessToken | None, caller: Client) -> bool:
    """True when the token exists, is still unrevoked, and belongs to the caller. Every part is
    evaluated (an unknown token against `DECOY_TOKEN`), so that an unknown token and another
    client's take the same steps."""
    checked = DECOY_TOKEN if token is None else token
    unrevoked = checked.revoked_at is None
    owned = checked.client_id == caller.client_id
    return token is not None and unrevoked and owned
