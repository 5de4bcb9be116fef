"""A real browser for tests: Debian's Chromium driven by Playwright for Python.

Playwright's own browser download (`playwright install`) is never used: `require_chromium()`
installs the Debian packages `chromium` and `chromium-driver` with apt-get when they are
missing and this runs as root, skips the calling test otherwise, and fails under `CI=true`, so
CI cannot go green without having run the browser tests. Screenshots go to
`$TOKENGATE_ARTIFACTS/<name>` when that is set, else to the test's tmp path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
PACKAGES = ("chromium", "chromium-driver")
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@functools.cache
def chromium_missing() -> str | None:
    """None when Debian's Chromium is installed (installing it if possible), else why not."""
    if Path(CHROMIUM).exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} not installed (and not root with apt-get to install it)"
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if _apt(install) != 0 and (_apt(["apt-get", "update"]) != 0 or _apt(install) != 0):
        return f"apt-get install {' '.join(PACKAGES)} failed"
    return None if Path(CHROMIUM).exists() else f"{CHROMIUM} still missing after apt-get"


def require_chromium() -> None:
    """Skip the calling test without Chromium or Playwright; fail instead under `CI=true`."""
    import pytest  # noqa: PLC0415 - a helper module importable outside pytest too

    reason = chromium_missing()
    if reason is None:
        try:
            import playwright.sync_api  # noqa: F401, PLC0415
        except ImportError:
            reason = "playwright (the test extra) is not installed"
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run, not skip)")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright, closed when the block ends."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir(name: str, fallback: Path) -> Path:
    """Where a test's screenshots go (created), printed so a run's output names it."""
    root = os.environ.get("TOKENGATE_ARTIFACTS")
    folder = Path(root) / name if root else fallback / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


def _apt(args: list[str]) -> int:
    return subprocess.run(
        args, env=APT_ENV, capture_output=True, timeout=900, check=False
    ).returncode
