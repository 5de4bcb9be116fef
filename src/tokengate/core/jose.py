"""joserfc limited to the asymmetric JWS algorithms we accept (RFC 7518 §3, RFC 8037). Sans-I/O."""

from __future__ import annotations

from collections.abc import Collection

from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry


class LimitedRegistry(JWSRegistry):
    """joserfc's JWS registry that knows only `allowed`, without its warning that `EdDSA` is
    deprecated for `Ed25519` (RFC 9864): that is what clients send today, and a warning
    filter would be process-global state."""

    def __init__(self, allowed: Collection[str], *, max_header_length: int = 512) -> None:
        super().__init__(algorithms=list(allowed))
        self._allowed = frozenset(allowed)
        self.max_header_length = max_header_length  # a header carrying an RSA `jwk` needs more

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in self._allowed or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]
