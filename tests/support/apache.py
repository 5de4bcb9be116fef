"""Real Apache httpd with mod_auth_openidc (Debian's `apache2`, `libapache2-mod-auth-openidc`)
in the foreground, its own config and state in a directory the test makes.

`require_apache()` installs the packages with apt-get when they are missing and this runs as
root, skips the calling test otherwise, and fails under `CI=true` (as `proxies.py` does for
nginx and Caddy). Apache's workers run as `www-data`: the directory it reads is made
world-readable, outside pytest's private temporary tree.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.edge import stop
from tests.support.proxies import APT_ENV
from tests.support.servers import wait_http

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
PACKAGES = ["apache2", "libapache2-mod-auth-openidc"]


@functools.cache
def apache_missing() -> str | None:
    """None when Apache and mod_auth_openidc are installed (installing them if possible)."""
    if _present():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "apache2 / mod_auth_openidc not installed (and not root with apt-get to install)"
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if _apt(install) != 0 and (_apt(["apt-get", "update"]) != 0 or _apt(install) != 0):
        return f"apt-get install {' '.join(PACKAGES)} failed"
    if Path("/run/apache2/apache2.pid").exists():  # the package's own instance, if it started
        subprocess.run(["apache2ctl", "stop"], capture_output=True, timeout=30, check=False)
    return None if _present() else "apache2 / mod_auth_openidc still missing after apt-get"


def require_apache() -> None:
    """Skip the calling test without Apache and mod_auth_openidc; fail instead under `CI=true`."""
    import pytest  # noqa: PLC0415 - a helper module importable outside pytest too

    reason = apache_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Apache tests must run, not skip)")
    pytest.skip(reason)


def _present() -> bool:
    return Path(APACHE).exists() and (MODULES / "mod_auth_openidc.so").exists()


def _apt(args: list[str]) -> int:
    return subprocess.run(
        args, env=APT_ENV, capture_output=True, timeout=600, check=False
    ).returncode


MAIN = """\
ServerRoot {root}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
DefaultRuntimeDir {root}
Mutex file:{root} default
ErrorLog {root}/error.log
LogLevel warn auth_openidc:info
User www-data
Group www-data
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
TypesConfig /etc/mime.types
DocumentRoot {root}/htdocs
<Directory {root}/htdocs>
    Require all granted
</Directory>
{body}
"""


@contextlib.contextmanager
def apache_root() -> Iterator[Path]:
    """A world-readable directory (with `htdocs/`) for one Apache instance, removed after."""
    root = Path(tempfile.mkdtemp(prefix="tg-apache-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "htdocs").mkdir(mode=0o755)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def apache(
    body: str, root: Path, port: int, health: str, verify: ssl.SSLContext | bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """Apache in the foreground with `body` after a minimal main config, until the block ends."""
    config = root / "httpd.conf"
    config.write_text(MAIN.format(root=root, port=port, modules=MODULES, body=body))
    with (root / "httpd.out").open("ab") as out:
        proc = subprocess.Popen(
            [APACHE, "-f", str(config), "-DFOREGROUND"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_http(health, proc=proc, verify=verify)
        except AssertionError as exc:
            logs = [(root / name).read_text(errors="replace") for name in ("httpd.out", "error.log")
                    if (root / name).exists()]  # fmt: skip
            raise AssertionError(f"{exc}; Apache said: {' '.join(logs)[-2000:]}") from None
        yield proc
    finally:
        stop(proc)
