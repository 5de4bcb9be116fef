"""`--log-format json` on every process: each log line is one JSON object, none holds a secret."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.servers import TOKENGATE, create_client, free_port, running_server, wait_http

pytestmark = pytest.mark.e2e


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # fixed argv, no shell
            [*TOKENGATE, *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )


def test_json_logs_everywhere(tmp_path: Path) -> None:
    """AS, resource server and gateway write JSON lines; no token or secret in any of them."""
    db = f"sqlite:///{tmp_path / 'logs.db'}"
    cid, secret = create_client(db, "svc", "read")
    rs_id, rs_secret = create_client(db, "rs", "", introspect=True)
    rs_port, gw_port = free_port(), free_port()
    extra = ["--log-format", "json", "--access-log"]
    with running_server(db, log_dir=tmp_path, extra_args=extra) as server:
        env = {"TOKENGATE_RS_CLIENT_ID": rs_id, "TOKENGATE_RS_CLIENT_SECRET": rs_secret}
        rs = _start(["example-resource-server", "--port", str(rs_port), "--issuer", server.issuer,
                     "--log-format", "json"], tmp_path / "rs.log", env)  # fmt: skip
        gw = _start(["gateway", "--upstream", f"http://127.0.0.1:{rs_port}", "--listen",
                     f"127.0.0.1:{gw_port}", *extra], tmp_path / "gw.log", {})  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{rs_port}/public/ping", proc=rs)
            wait_http(f"http://127.0.0.1:{gw_port}/_tokengate/healthz", proc=gw)
            token = httpx.post(
                server.base_url + "/oauth2/token",
                auth=(cid, secret),
                data={"grant_type": "client_credentials"},
            ).json()["access_token"]
            for _ in range(2):
                response = httpx.get(
                    f"http://127.0.0.1:{gw_port}/auth-api/hello", headers={"X-Access-Token": token}
                )
                assert response.status_code == 200
            httpx.get(f"http://127.0.0.1:{gw_port}/auth-api/hello")  # 401
        finally:
            for proc in (gw, rs):
                proc.terminate()
                proc.wait(timeout=10)
    logs = {"as": server.log_path, "rs": tmp_path / "rs.log", "gw": tmp_path / "gw.log"}
    for name, path in logs.items():
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        assert lines, name
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert {"ts", "level", "logger", "msg"} <= set(record), (name, line)
        text = path.read_text()
        for value in (token, secret, rs_secret):
            assert value not in text, name
    assert any('"request_id"' in line for line in logs["as"].read_text().splitlines())
