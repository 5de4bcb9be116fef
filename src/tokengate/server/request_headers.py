"""The request headers the authorization server's endpoints read (RFC 9110 §5.3)."""

from __future__ import annotations

from tokengate.asgi.types import Scope
from tokengate.core.errors import InvalidRequest

# The peer address travels with the headers under a name no HTTP field can have.
PEER = ":peer"
_WANTED = {
    name.encode(): name
    for name in ("authorization", "content-type", "content-length", "x-request-id")
}


def request_headers(scope: Scope) -> dict[str, str]:
    """The few headers the endpoints read, lower-cased; a repeated one is an error."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        key = _WANTED.get(raw_name)
        if key is None and not raw_name.islower():  # ASGI servers lower-case names; most do
            key = _WANTED.get(raw_name.lower())
        if key is not None:
            if key in found:
                raise InvalidRequest(f"repeated {key} header")
            found[key] = raw_value.decode("latin-1")
    client = scope.get("client")
    if client:
        found[PEER] = str(client[0])
    return found
