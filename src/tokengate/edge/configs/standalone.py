"""A whole `nginx.conf` around a generated block, for an nginx of our own in the foreground
(the demo, the end-to-end tests and the benchmark): every path under one directory."""

from __future__ import annotations

import os
from pathlib import Path

_TEMP = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_main(root: Path, include: Path, *, access_log: bool = True) -> str:
    """`daemon off`, one worker, pid, logs and temp paths in `root`, `include` inside `http`.

    The temp directories are made here. As root, the worker runs as root too: it must reach
    them (Debian's default `www-data` cannot read a private temp dir).
    """
    for name in _TEMP:
        (root / name).mkdir(parents=True, exist_ok=True)
    temp = "\n".join(f"    {name}_temp_path {root / name};" for name in _TEMP)
    user = "user root;\n" if os.geteuid() == 0 else ""
    log = f"{root / 'access.log'}" if access_log else "off"
    return (
        f"daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} warn;\n{user}"
        "events { worker_connections 4096; }\n"
        f"http {{\n    access_log {log};\n{temp}\n    include {include};\n}}\n"
    )
