"""The authorization server: `create_app(settings, store)` → ASGI app."""

from tokengate.server.app import AuthorizationServer, create_app
from tokengate.server.settings import Settings

__all__ = ["AuthorizationServer", "Settings", "create_app"]
