"""Resource-server library: validate opaque bearer tokens by RFC 7662 introspection, cached.

Quick start (any ASGI app)::

    settings = ValidatorSettings(client_id=..., client_secret=..., issuer="https://as.example")
    app = TokenGateMiddleware(app, create_validator(settings), policy=Policy.protect("/api/**"))

Optional parts live in their own modules so importing this package stays light:
`tokengate.resource.redis_cache` (shared cache), `tokengate.resource.fastapi` (dependency),
`tokengate.resource.testing` (helpers for your tests), `tokengate.resource.example`.

Instant revocation: `create_subscriber(validator, settings)` follows the authorization server's
revocation events, evicting what they name; `start()` it with your app, `aclose()` at shutdown.
"""

from tokengate.resource.asgi import TokenGateMiddleware
from tokengate.resource.cache import MemoryTokenCache, SharedTokenCache, fresh_until
from tokengate.resource.claims import TokenClaims, parse_claims
from tokengate.resource.decision import authorize
from tokengate.resource.errors import (
    BearerError,
    CircuitOpen,
    DiscoveryError,
    InsufficientScope,
    IntrospectionError,
    IntrospectionUnavailable,
    InvalidIntrospectionResponse,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ServiceUnavailable,
)
from tokengate.resource.factory import (
    ValidatorSettings,
    create_subscriber,
    create_sync_validator,
    create_validator,
)
from tokengate.resource.introspection import IntrospectionClient, SyncIntrospectionClient, Timeouts
from tokengate.resource.policy import Policy, Requirement, Rule
from tokengate.resource.resilience import CircuitBreaker, RetryPolicy
from tokengate.resource.resolver import DEFAULT_TOKEN_HEADER, resolve_token
from tokengate.resource.responses import ErrorResponse, render_error
from tokengate.resource.rfc7662 import ClientCredentials
from tokengate.resource.singleflight import SingleFlight, ThreadSingleFlight
from tokengate.resource.stats import Stats
from tokengate.resource.subscriber import RevocationSubscriber, StreamTimeouts
from tokengate.resource.validator import Introspector, SyncIntrospector, SyncValidator, Validator
from tokengate.resource.wsgi import TokenGateWSGIMiddleware

__all__ = [
    "DEFAULT_TOKEN_HEADER",
    "BearerError",
    "CircuitBreaker",
    "CircuitOpen",
    "ClientCredentials",
    "DiscoveryError",
    "ErrorResponse",
    "InsufficientScope",
    "IntrospectionClient",
    "IntrospectionError",
    "IntrospectionUnavailable",
    "Introspector",
    "InvalidIntrospectionResponse",
    "InvalidRequest",
    "InvalidToken",
    "MemoryTokenCache",
    "MissingToken",
    "Policy",
    "Requirement",
    "RetryPolicy",
    "RevocationSubscriber",
    "Rule",
    "ServiceUnavailable",
    "SharedTokenCache",
    "SingleFlight",
    "Stats",
    "StreamTimeouts",
    "SyncIntrospectionClient",
    "SyncIntrospector",
    "SyncValidator",
    "ThreadSingleFlight",
    "Timeouts",
    "TokenClaims",
    "TokenGateMiddleware",
    "TokenGateWSGIMiddleware",
    "Validator",
    "ValidatorSettings",
    "authorize",
    "create_subscriber",
    "create_sync_validator",
    "create_validator",
    "fresh_until",
    "parse_claims",
    "render_error",
    "resolve_token",
]
