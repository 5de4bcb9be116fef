"""How tokengate's servers listen: bounded connections and heads, optional TLS (uvicorn)."""

from tokengate.serving.config import uvicorn_config
from tokengate.serving.limits import ServerLimits, auto_max_connections
from tokengate.serving.tls import server_context

__all__ = ["ServerLimits", "auto_max_connections", "server_context", "uvicorn_config"]
