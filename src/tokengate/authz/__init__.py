"""`tokengate authz`: the forward-auth decision service for real proxies.

nginx (`auth_request`), Traefik (ForwardAuth), Caddy (`forward_auth`) and Envoy (HTTP
`ext_authz`) ask it, before forwarding a request, whether that request may pass; it answers
with the resource-server library's validator (expiry-bounded cache, single-flight, revocation
events, 401/403/503 done right) and hands the validated claims back in identity headers::

    app = create_authz(AuthzSettings(policy=Policy.protect("/auth-api/**")), validator)
"""

from tokengate.authz.app import Authz, create_authz
from tokengate.authz.settings import AuthzSettings

__all__ = ["Authz", "AuthzSettings", "create_authz"]
