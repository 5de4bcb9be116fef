"""Ready proxy configurations for `tokengate authz` (`tokengate edge-config`): nginx
`auth_request`, Caddy `forward_auth`, Traefik ForwardAuth and Envoy HTTP `ext_authz`.

Each one passes the token to the decision service, copies the identity headers of its 200 to
the upstream and removes every copy a client sent, relays 401/403/400 with their challenge,
turns "cannot check" into 503, and lets the decision service see the request target as the
client sent it (or, for Envoy, as the upstream will get it), so an ambiguous one is refused.
"""

from tokengate.edge.configs.options import Address, BaseUrl, EdgeOptions
from tokengate.edge.configs.render import KINDS, Kind, render, spellings

__all__ = ["KINDS", "Address", "BaseUrl", "EdgeOptions", "Kind", "render", "spellings"]
