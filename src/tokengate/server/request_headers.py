"""The request headers the authorization server's endpoints read (RFC 9110 §5.3)."""

from __future__ import annotations

from tokengate.asgi.types import Scope
from tokengate.core.errors import InvalidDpopProof, InvalidRequest

# The peer address travels with the headers under a name no HTTP field can have.
PEER = ":peer"
_WANTED = {
    name.encode(): name
    for name in (
        "authorization", "content-type", "content-length", "x-request-id", "if-none-match", "dpop",
        "accept",  # RFC 9701 §4: a signed introspection response is asked for with it
    )
}  # fmt: skip
# List-valued fields (RFC 9110 §5.3): repeated lines are one comma-separated value.
_LISTS = frozenset({"if-none-match", "accept"})


def request_headers(scope: Scope) -> dict[str, str]:
    """The few headers the endpoints read, lower-cased; a repeated one is an error unless it is
    a list (joined with commas)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        key = _WANTED.get(raw_name)
        if key is None and not raw_name.islower():  # ASGI servers lower-case names; most do
            key = _WANTED.get(raw_name.lower())
        if key is not None:
            value = raw_value.decode("latin-1")
            if key in found:
                if key == "dpop":  # RFC 9449 §4.3 step 1: exactly one proof
                    raise InvalidDpopProof("more than one DPoP header")
                if key not in _LISTS:
                    raise InvalidRequest(f"repeated {key} header")
                value = found[key] + ", " + value
            found[key] = value
    client = scope.get("client")
    if client:
        found[PEER] = str(client[0])
    return found
