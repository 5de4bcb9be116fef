"""The admin console: server-rendered pages (Jinja2, htmx) under `/admin`, off unless enabled."""

from tokengate.server.console.app import Console
from tokengate.server.console.guard import ConsoleRefused

__all__ = ["Console", "ConsoleRefused"]
