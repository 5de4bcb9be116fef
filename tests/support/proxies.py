"""Real nginx and Caddy (Debian's packages) in the foreground, each with its own temp dir.

`require_proxies()` installs them with apt-get when they are missing and this runs as root,
skips the calling test otherwise, and fails under `CI=true`, so CI cannot go green without
having run them. The packages' own services are stopped right after an install: the tests
start their own instances on free loopback ports.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.edge import stop
from tests.support.servers import wait_http
from tokengate.edge.configs.standalone import nginx_main

BINARIES = {"nginx": "nginx", "caddy": "caddy"}
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@functools.cache
def proxies_missing() -> str | None:
    """None when nginx and Caddy are installed (installing them if possible), else why not."""
    missing = [name for name, binary in BINARIES.items() if shutil.which(binary) is None]
    if not missing:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{' and '.join(missing)} not installed (and not root with apt-get to install)"
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if _apt(install) != 0 and (_apt(["apt-get", "update"]) != 0 or _apt(install) != 0):
        return f"apt-get install {' '.join(missing)} failed"
    _stop_package_services(missing)
    still = [name for name in missing if shutil.which(BINARIES[name]) is None]
    return f"{' and '.join(still)} still missing after apt-get install" if still else None


def require_proxies() -> None:
    """Skip the calling test without nginx and Caddy; fail instead under `CI=true`."""
    import pytest  # noqa: PLC0415 - a helper module importable outside pytest too

    reason = proxies_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the nginx and Caddy tests must run, not skip)")
    pytest.skip(reason)


def _apt(args: list[str]) -> int:
    return subprocess.run(
        args, env=APT_ENV, capture_output=True, timeout=600, check=False
    ).returncode


def _stop_package_services(installed: list[str]) -> None:
    """Stop the instances the packages' install scripts may have started on ports 80/443."""
    if "nginx" in installed and Path("/run/nginx.pid").exists():
        subprocess.run(["nginx", "-s", "quit"], capture_output=True, timeout=30, check=False)
    if "caddy" in installed:  # its admin endpoint, if the service came up
        subprocess.run(["caddy", "stop"], capture_output=True, timeout=30, check=False)


CADDY_GLOBAL = """\
{{
    admin off
    auto_https off
    storage file_system {root}/data
}}
"""


@contextlib.contextmanager
def nginx(server_block: str, root: Path, health: str) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with `server_block` inside a full `nginx.conf` under `root`, until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokengate.conf").write_text(server_block)
    (root / "nginx.conf").write_text(nginx_main(root, root / "tokengate.conf"))
    args = ["nginx", "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
    with _foreground(args, root / "nginx.out", health) as proc:
        yield proc


@contextlib.contextmanager
def caddy(site_block: str, root: Path, health: str) -> Iterator[subprocess.Popen[bytes]]:
    """Caddy with `site_block` after test-only global options, state kept under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Caddyfile").write_text(CADDY_GLOBAL.format(root=root) + site_block)
    args = ["caddy", "run", "--config", str(root / "Caddyfile"), "--adapter", "caddyfile"]
    env = {"HOME": str(root), "XDG_DATA_HOME": str(root / "data"), "XDG_CONFIG_HOME": str(root)}
    with _foreground(args, root / "caddy.out", health, env) as proc:
        yield proc


@contextlib.contextmanager
def _foreground(
    args: list[str], log: Path, health: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        wait_http(health, proc=proc)
        yield proc
    finally:
        stop(proc)
