"""Node.js interop clients from the npm registry, for tests that drive tokengate with code
nobody here wrote. `tests/interop/js/package.json` pins exact versions; the packages are
installed into its `node_modules` (ignored by git; no lock file is committed) on first use.

A missing `node`/`npm` or a failed install skips the test with the reason locally and fails
it under `CI=true`, like every other external tool.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent / "interop" / "js"
INSTALL_TIMEOUT = 300


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: interop tests must run, not skip)")
    pytest.skip(reason)


@functools.cache
def _install() -> str | None:
    """Install the pinned packages once per run; None on success, else why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed (Debian package nodejs)"
    wanted = json.loads((PROJECT / "package.json").read_text())["dependencies"]
    if all(_installed(name) == version for name, version in wanted.items()):
        return None
    args = ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--ignore-scripts"]
    try:
        proc = subprocess.run(args, cwd=PROJECT, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"npm install took more than {INSTALL_TIMEOUT}s"
    if proc.returncode != 0:
        return f"npm install failed: {proc.stderr.strip()[-500:]}"
    return None


def _installed(name: str) -> str | None:
    manifest = PROJECT / "node_modules" / name / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def run_node(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `tests/interop/js/SCRIPT ARGS...` with the pinned packages installed."""
    reason = _install()
    if reason is not None:
        _unavailable(reason)
    return subprocess.run(["node", script, *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
