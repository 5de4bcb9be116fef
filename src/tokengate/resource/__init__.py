"""Resource-server library: validate opaque bearer tokens by RFC 7662 introspection, cached,
and DPoP-bound ones (RFC 9449) with their proof, checked on every request.

Quick start (any ASGI app; WSGI apps such as Flask take `TokenGateWSGIMiddleware` the same way)::

    settings = ValidatorSettings(issuer="https://as.example", client_id=..., client_secret=...)
    app = TokenGateMiddleware(app, create_validator(settings), policy=Policy.protect("/api/**"))

The validator follows the authorization server's revocation events by default (a revoked
token is refused at once, while cached answers last up to `max_ttl`). This is the one import
path for users; the layers behind it are `protocol` (sans-I/O), `runtime` (the async core)
and `adapters` (ASGI, WSGI, FastAPI). Names needing an optional dependency load on first use:
`require_scopes`, `BearerHTTPException`, `bearer_exception_handler` (Starlette/FastAPI),
`RedisTokenCache` and `RedisReplayStore` (`tokengate[redis]`). Test helpers:
`tokengate.resource.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.adapters.wsgi import TokenGateWSGIMiddleware
from tokengate.resource.protocol.claims import TokenClaims
from tokengate.resource.protocol.dpop import ProofPolicy
from tokengate.resource.protocol.errors import (
    BearerError,
    InsufficientScope,
    IntrospectionError,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ServiceUnavailable,
)
from tokengate.resource.protocol.policy import Policy, Requirement, Rule
from tokengate.resource.protocol.resilience import RetryPolicy
from tokengate.resource.protocol.resolver import DEFAULT_TOKEN_HEADER
from tokengate.resource.runtime.cache import CachedClaims, SharedTokenCache
from tokengate.resource.runtime.client import Timeouts
from tokengate.resource.runtime.replay import MemoryReplayStore, ReplayStore
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.subscriber import StreamTimeouts
from tokengate.resource.runtime.validator import Validator, create_validator

if TYPE_CHECKING:
    from tokengate.resource.adapters.fastapi import (
        BearerHTTPException,
        bearer_exception_handler,
        require_scopes,
    )
    from tokengate.resource.runtime.redis import RedisReplayStore, RedisTokenCache

__all__ = [
    "DEFAULT_TOKEN_HEADER",
    "BearerError",
    "BearerHTTPException",
    "CachedClaims",
    "InsufficientScope",
    "IntrospectionError",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "MemoryReplayStore",
    "MissingToken",
    "Policy",
    "ProofPolicy",
    "RedisReplayStore",
    "RedisTokenCache",
    "ReplayStore",
    "Requirement",
    "RetryPolicy",
    "Rule",
    "ServiceUnavailable",
    "SharedTokenCache",
    "StreamTimeouts",
    "Timeouts",
    "TokenClaims",
    "TokenGateMiddleware",
    "TokenGateWSGIMiddleware",
    "Validator",
    "ValidatorSettings",
    "bearer_exception_handler",
    "create_validator",
    "require_scopes",
]

_LAZY = {
    "BearerHTTPException": "tokengate.resource.adapters.fastapi",
    "bearer_exception_handler": "tokengate.resource.adapters.fastapi",
    "require_scopes": "tokengate.resource.adapters.fastapi",
    "RedisTokenCache": "tokengate.resource.runtime.redis",
    "RedisReplayStore": "tokengate.resource.runtime.redis",
}


def __getattr__(name: str) -> Any:
    """Load the names that need an optional dependency only when asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokengate.resource' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
