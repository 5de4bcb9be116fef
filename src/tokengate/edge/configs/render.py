"""Render a proxy configuration from its template (`string.Template`, package data).

Each kind's template is a whole file under this package; the values substituted into it are
the validated `EdgeOptions` and a few lines made from them here (one per identity header).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from importlib.resources import files
from string import Template
from typing import Literal

from tokengate.edge.configs.options import EdgeOptions

Kind = Literal["nginx", "caddy", "traefik", "envoy"]
KINDS: tuple[Kind, ...] = ("nginx", "caddy", "traefik", "envoy")


def render(kind: Kind, options: EdgeOptions) -> str:
    """The configuration of proxy `kind` for `options`."""
    if kind not in _VALUES:
        raise ValueError(f"unknown proxy {kind!r}; one of {', '.join(KINDS)}")
    template = Template(files(__package__).joinpath(f"{kind}.tmpl").read_text("utf-8"))
    return template.substitute(_common(options), **_VALUES[kind](options))


def spellings(name: str) -> list[str]:
    """`name` with each `-` kept or written `_`: `X-Auth` → `X-Auth`, `X_Auth`."""
    words = name.split("-")
    return [
        words[0] + "".join(sep + word for sep, word in zip(seps, words[1:], strict=True))
        for seps in itertools.product("-_", repeat=len(words) - 1)
    ]


def _common(o: EdgeOptions) -> dict[str, str]:
    return {
        "listen": o.listen.authority,
        "upstream_url": str(o.upstream),
        "authz_url": str(o.authz),
        "authz_path": o.authz.path,
        "token_header": o.token_header,
        "identity_headers": " ".join(o.identity_headers),
    }


def _lines(indent: int, template: str, items: Iterable[str]) -> str:
    return "\n".join(" " * indent + template.format(item) for item in items)


def _nginx(o: EdgeOptions) -> dict[str, str]:
    variables = [(name, "tokengate_" + _variable(name)) for name in o.identity_headers]
    capture = [f"${var} $upstream_http_{_variable(name)}" for name, var in variables]
    # Pool names unique per listening port, so several generated blocks fit one nginx.
    suffix = f"{o.listen.port}"
    return {
        "capture_identity": _lines(8, "auth_request_set {};", capture),
        "set_identity": _lines(8, "proxy_set_header {};", (f"{n} ${v}" for n, v in variables)),
        "upstream_pool": f"tokengate_upstream_{suffix}",
        "authz_pool": f"tokengate_authz_{suffix}",
        "upstream_authority": o.upstream.address.authority,
        "authz_authority": o.authz.address.authority,
    }


def _caddy(o: EdgeOptions) -> dict[str, str]:
    host = o.listen.host
    everywhere = host in ("0.0.0.0", "::")  # noqa: S104 - only compared, never bound here
    return {
        "port": str(o.listen.port),
        "bind": "" if everywhere else f"    bind {host}",
        "strip_identity": _lines(8, "request_header -{}", _all_spellings(o)),
        "copy_identity": "\n".join(_caddy_copy(name) for name in o.identity_headers),
        "authz_authority": o.authz.address.authority,
        "upstream_authority": o.upstream.address.authority,
    }


def _caddy_copy(name: str) -> str:
    matcher = "@has_" + _variable(name)
    answer = "{http.reverse_proxy.header." + name + "}"
    return (
        f"{' ' * 16}{matcher} expression `{answer} != null`\n"
        f"{' ' * 16}request_header {matcher} {name} {answer}"
    )


def _traefik(o: EdgeOptions) -> dict[str, str]:
    underscored = [s for s in _all_spellings(o) if "_" in s]
    strip = _lines(10, '"{}": ""', underscored) if underscored else " " * 10 + "{}"
    return {"strip_identity": strip, "identity_headers": ", ".join(o.identity_headers)}


def _envoy(o: EdgeOptions) -> dict[str, str]:
    names = [name.lower() for name in o.identity_headers]
    return {
        "listen_host": o.listen.host,
        "listen_port": str(o.listen.port),
        "strip_identity": _lines(24, '- remove: "{}"', names),
        "token_header_lower": o.token_header.lower(),
        "identity_patterns": _lines(30, '- {{exact: "{}", ignore_case: true}}', names),
        "upstream_host": o.upstream.address.host,
        "upstream_port": str(o.upstream.address.port),
        "authz_host": o.authz.address.host,
        "authz_port": str(o.authz.address.port),
    }


def _variable(name: str) -> str:
    """nginx's variable spelling of a header name: `X-Auth-Subject` → `x_auth_subject`."""
    return name.lower().replace("-", "_")


def _all_spellings(o: EdgeOptions) -> list[str]:
    return [spelling for name in o.identity_headers for spelling in spellings(name)]


_VALUES: Mapping[str, Callable[[EdgeOptions], dict[str, str]]] = {
    "nginx": _nginx,
    "caddy": _caddy,
    "traefik": _traefik,
    "envoy": _envoy,
}
