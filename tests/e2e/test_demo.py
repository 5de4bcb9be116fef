"""`tokengate demo` as a user runs it: exit status, transcript, and no secret in any output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.proxies import require_proxies

pytestmark = pytest.mark.e2e
Run = tuple[subprocess.CompletedProcess[str], Path, dict[str, str]]

STEPS = [
    r"1\. POST /oauth2/token \(client credentials, scope read\) +200 ✔  tgat_\S{3}…$",
    r"2\. GET /auth-api/hello via (the gateway|nginx \+ authz), with X-Access-Token"
    r" +200 ✔ .*\(1 call\)$",
    r"3\. GET /auth-api/hello again +200 ✔  cache hit .*\+1 cache hit, \+0 introspections",
    r"4\. GET /auth-api/hello without a token +401 ✔  "
    r'Bearer realm="tokengate-example", DPoP realm="tokengate-example", algs="[A-Za-z0-9 ]+"$',
    r"5\. POST /auth-api/items \(needs write; the token has read\) +403 ✔ .*insufficient_scope",
    r"6\. POST /oauth2/revoke \(RFC 7009\) +200 ✔$",
    r"7\. GET /auth-api/hello with the revoked token +401 ✔  .* revocation event",
    r"8\. GET /public/ping \(public, no token\) +200 ✔",
    r"^8 of 8 steps passed: every step behaved as shown\.$",
]


@pytest.fixture(scope="module", params=["gateway", "nginx"])
def run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    """One demo run per edge (the built-in gateway; nginx + authz): its result, its work dir,
    and the secrets it reported through the hook."""
    if request.param == "nginx":
        require_proxies()
    root = tmp_path_factory.mktemp("demo")
    workdir, secrets_file = root / "work", root / "secrets.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokengate",
            "demo",
            "--edge",
            request.param,
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TOKENGATE_DEMO_SECRETS_FILE": str(secrets_file)},
        check=False,
    )
    return done, workdir, json.loads(secrets_file.read_text())


def test_demo_exits_zero_with_the_narrated_flow(
    run: Run,
) -> None:
    """Exit 0, and each step's line shows the expected status and a ✔."""
    done, _, _ = run
    assert done.returncode == 0, done.stdout + done.stderr
    for pattern in STEPS:
        assert re.search(pattern, done.stdout, re.MULTILINE), pattern
    assert "✘" not in done.stdout


def test_no_token_or_secret_appears_anywhere(
    run: Run,
) -> None:
    """The token and both client secrets are in no output, no log and not in the database."""
    done, workdir, secrets = run
    edge = {"edge_client_secret"} if "nginx + authz" in done.stdout else set()
    assert set(secrets) == {"access_token", "client_secret", "rs_client_secret", *edge}
    logs = {p.name for p in workdir.glob("*.log")}
    servers = {"authz.log", "nginx.log"} if edge else {"gateway.log"}
    assert logs == {"auth-server.log", "resource-server.log", *servers}
    files = [p for p in workdir.rglob("*") if p.is_file()]
    for value in secrets.values():
        assert len(value) > 20
        assert value not in done.stdout
        assert value not in done.stderr
        for path in files:
            assert value.encode() not in path.read_bytes(), path.name
        assert value[:8] + "…" in done.stdout  # shown only as a short prefix


def test_every_process_is_stopped(
    run: Run,
) -> None:
    """After the demo exits, none of its servers answers any more."""
    done, _, _ = run
    urls = re.findall(r"(http://127\.0\.0\.1:\d+)", done.stdout)
    assert len(set(urls)) >= 3
    for url in set(urls):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
