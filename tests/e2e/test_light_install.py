"""`pip install tokengate` alone (no extras) is the resource-server library: it protects an ASGI
and a WSGI app, brings no database driver, ASGI server or Redis client, and a command that
needs an extra says which one. `pip install 'tokengate[server]'`, what the README's demo command
installs, runs the whole demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import create_client, running_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).parent / "apps" / "light_check.py"


def _run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _venv(tmp_path_factory: pytest.TempPathFactory, name: str, requirement: str) -> Path:
    """A fresh venv with `pip install <requirement>`, the exact pins, nothing else."""
    venv = tmp_path_factory.mktemp(name) / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = _run(*pip, "-c", ROOT / "constraints.txt", requirement)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout with no extras."""
    return _venv(tmp_path_factory, "light", str(ROOT))


def test_base_install_protects_asgi_and_wsgi_apps(light_venv: Path, tmp_path: Path) -> None:
    """Valid token 200, garbage 401, through both adapters, with only the base dependencies."""
    database = f"sqlite:///{tmp_path / 'tokengate.db'}"
    client = create_client(database, "svc", "read")
    rs = create_client(database, "rs", "", introspect=True)
    with running_server(database, log_dir=tmp_path) as server:
        form = {"grant_type": "client_credentials"}
        token = httpx.post(server.base_url + "/oauth2/token", data=form, auth=client)
        args = (server.issuer, *rs, token.json()["access_token"])
        checked = _run(light_venv / "bin" / "python", CHECK, *args, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "FAILED" not in checked.stdout


def test_a_command_needing_an_extra_names_it(light_venv: Path) -> None:
    """`tokengate serve` without `[server]` fails with the extra to install, not a traceback."""
    tokengate = light_venv / "bin" / "tokengate"
    assert _run(tokengate, "--help", timeout=60).returncode == 0
    serve = _run(tokengate, "serve", "--port", "0", timeout=60)
    assert serve.returncode != 0
    assert "pip install 'tokengate[server]'" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_the_server_extra_runs_the_demo(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`tokengate[server]` alone (the demo command's install) has every module the demo's
    commands import: the demo walks its whole flow and exits 0."""
    venv = _venv(tmp_path_factory, "server", f"{ROOT}[server]")
    demo = _run(venv / "bin" / "tokengate", "demo", timeout=180)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "steps passed" in demo.stdout
