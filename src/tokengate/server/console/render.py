"""Pages of the admin console: Jinja2 templates (autoescaped) and the packaged static files."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import jinja2

from tokengate.core.responses import Headers, Response
from tokengate.server.console.guard import SECURITY_HEADERS

HTML = b"text/html; charset=utf-8"
STATIC_TYPES = {
    "htmx.min.js": b"text/javascript; charset=utf-8",
    "console.css": b"text/css; charset=utf-8",
    "favicon.svg": b"image/svg+xml",
}


def _when(value: object) -> str:
    """A Unix time as UTC text; empty for none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


class Pages:
    """Renders templates into responses carrying the console's security headers."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("tokengate.server.console", "templates"),
            autoescape=True,  # every template is HTML: escape every value
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = _when
        folder = resources.files("tokengate.server.console").joinpath("static")
        self.static = {name: folder.joinpath(name).read_bytes() for name in STATIC_TYPES}

    def page(
        self, template: str, status: int = 200, *, headers: Headers = (), **context: Any
    ) -> Response:
        """A rendered template."""
        body = self.env.get_template(template).render(**context).encode()
        return Response(status, body, ((b"content-type", HTML), *SECURITY_HEADERS, *headers))

    def asset(self, name: str) -> Response | None:
        """A packaged static file (no secret in it: cacheable for an hour)."""
        body = self.static.get(name)
        if body is None:
            return None
        headers = (
            (b"content-type", STATIC_TYPES[name]),
            (b"cache-control", b"public, max-age=3600"),
            (b"x-content-type-options", b"nosniff"),
        )
        return Response(200, body, headers)


def redirect(location: str, headers: Headers = ()) -> Response:
    """303 See Other after a form (RFC 9110 §15.4.4: the browser follows with a GET)."""
    return Response(303, b"", ((b"location", location.encode()), *SECURITY_HEADERS, *headers))
