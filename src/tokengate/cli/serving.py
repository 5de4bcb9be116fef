"""The server option group every serving command shares (`serve`, `example-resource-server`,
`authz`, `gateway`): connection and request-head limits, and TLS. Defaults from `ServerLimits`;
each option also reads `<PREFIX>_<OPTION>`."""

from __future__ import annotations

import functools
import os
import resource
import ssl
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click

from tokengate.cli.options import Decorator, env_option
from tokengate.serving import ServerLimits, auto_max_connections, server_context
from tokengate.serving.limits import FD_RESERVE

_DEFAULTS = ServerLimits()


@dataclass(frozen=True, slots=True)
class ServingOptions:
    """What the server options said; `limits()` and `tls()` check them."""

    max_header_bytes: int
    max_headers: int
    header_timeout: float
    keep_alive_timeout: int
    max_client_connections: int | None
    tls_cert: Path | None
    tls_key: Path | None

    @property
    def scheme(self) -> str:
        """`https` when this server terminates TLS itself."""
        return "http" if self.tls_cert is None else "https"

    def limits(self) -> ServerLimits:
        """The limits; a cap the descriptor limit cannot honour is refused."""
        cap = self.max_client_connections
        if cap is not None and cap > auto_max_connections():
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            raise click.BadParameter(
                f"{cap} connections need more file descriptors than the limit of {soft} leaves"
                f" ({FD_RESERVE} kept for the rest): raise it (ulimit -n) or lower this",
                param_hint="--max-client-connections",
            )
        try:
            return ServerLimits(
                max_header_bytes=self.max_header_bytes,
                max_headers=self.max_headers,
                header_timeout=self.header_timeout,
                keep_alive_timeout=self.keep_alive_timeout,
                max_connections=cap,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    def tls(self) -> ssl.SSLContext | None:
        """The TLS server context, or None; half a pair or a bad pair is refused."""
        if self.tls_cert is None and self.tls_key is None:
            return None
        if self.tls_cert is None or self.tls_key is None:
            raise click.UsageError("give both --tls-cert and --tls-key, or neither")
        try:
            return server_context(self.tls_cert, self.tls_key)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tls-cert/--tls-key") from None


_NAMES = tuple(f.name for f in fields(ServingOptions))


def serving_options(prefix: str) -> Decorator:
    """Add the server option group; the command receives one `serving: ServingOptions`."""
    options = _serving_option_list(prefix)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def collected(**values: Any) -> Any:
            mine = {name: values.pop(name) for name in _NAMES}
            return command(serving=ServingOptions(**mine), **values)

        decorated: Callable[..., Any] = collected
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def _serving_option_list(prefix: str) -> list[Decorator]:
    def number(decl: str, default: Any, kind: click.ParamType[Any, Any], text: str) -> Decorator:
        return env_option(prefix, decl, default=default, show_default=True, type=kind, help=text)

    pem = click.Path(dir_okay=False, path_type=Path)  # existence is checked with the pair
    return [
        number(
            "--max-header-bytes",
            _DEFAULTS.max_header_bytes,
            click.IntRange(min=1024),
            "Request line and header fields, in bytes; past it 431.",
        ),
        number(
            "--max-headers",
            _DEFAULTS.max_headers,
            click.IntRange(min=1),
            "Header fields per request; past it 431.",
        ),
        number(
            "--header-timeout",
            _DEFAULTS.header_timeout,
            click.FloatRange(min=0.01),
            "Seconds from a request's first byte to the end of its head; then 408.",
        ),
        number(
            "--keep-alive-timeout",
            _DEFAULTS.keep_alive_timeout,
            click.IntRange(min=1),
            "Seconds a connection may stay idle (before a request, between requests).",
        ),
        env_option(
            prefix,
            "--max-client-connections",
            type=click.IntRange(min=1),
            help="Open client connections at most; past it the longest-waiting idle one is"
            f" closed (default: the file-descriptor limit less {FD_RESERVE}).",
        ),
        env_option(prefix, "--tls-cert", type=pem, help="Serve HTTPS: PEM certificate chain."),
        env_option(prefix, "--tls-key", type=pem, help="The certificate's PEM private key."),
    ]


class WorkerCount(click.ParamType[int, Any]):
    """`--workers`: a whole number of processes, at least 1, or `auto` (one per usable core)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The number of worker processes; anything else is a usage error."""
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "auto":
            return usable_cores()
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                self.fail(f"{value!r} is neither a whole number nor 'auto'", param, ctx)
        if number < 1:
            self.fail(f"{number} workers: at least 1 is needed", param, ctx)
        return number


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which container limits narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
