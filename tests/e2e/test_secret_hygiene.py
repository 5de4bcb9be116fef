"""After a full run, no token and no client secret can be found in the database, the logs or
the metrics (RFC 6749 §10.3/§10.10, RFC 9700 §4.9.3): only their SHA-256 digests are kept."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.servers import create_client, run_cli, running_server
from tokengate.core.credentials import hash_value

pytestmark = pytest.mark.e2e


def _database_dump(database_url: str) -> bytes:
    """Every byte the database holds: the SQLite files, or a full pg_dump."""
    if database_url.startswith("sqlite:"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    db = urlsplit(database_url).path.lstrip("/")
    return subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", db],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def test_no_secret_in_database_logs_or_metrics(database_url: str, tmp_path: Path) -> None:
    """Grep the DB, the JSON access/debug logs and /metrics for every token and secret used."""
    cid, secret = create_client(database_url, "svc", "read write")
    rs_id, rs_secret = create_client(database_url, "rs", "", introspect=True)
    args = ["--log-format", "json", "--access-log", "--log-level", "debug"]
    secrets_used = [secret, rs_secret, "tgcs_wrongwrongwrongwrongwrongwrongwrongwrongwro00000000"]
    tokens: list[str] = []
    with running_server(database_url, log_dir=tmp_path, extra_args=args) as server:
        base = server.base_url
        for _ in range(5):
            response = httpx.post(
                base + "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(cid, secret),
            )
            tokens.append(response.json()["access_token"])
        httpx.post(
            base + "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        )
        httpx.post(
            base + "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(cid, secrets_used[2]),
        )
        for token in tokens:
            httpx.post(base + "/oauth2/introspect", data={"token": token}, auth=(rs_id, rs_secret))
        httpx.post(base + "/oauth2/revoke", data={"token": tokens[0]}, auth=(cid, secret))
        with httpx.stream(
            "GET",
            base + "/oauth2/events",
            auth=(rs_id, rs_secret),
            headers={"Last-Event-ID": "0"},
            timeout=5,
        ) as stream:
            next(stream.iter_lines())
        run_cli("tokens", "revoke", tokens[1], "--database", database_url)
        rotated = run_cli("clients", "rotate-secret", cid, "--database", database_url, "--json")
        metrics = httpx.get(base + "/metrics").text.encode()
    secrets_used.append(rotated.split('"client_secret": "')[1].split('"')[0])
    logs = server.log_path.read_bytes()
    dump = _database_dump(database_url)
    assert b'"status": 200' in logs or b'"status":200' in logs  # the access log was on
    assert hash_value(tokens[0]).encode() in dump  # we are looking at the right data
    for value in tokens + secrets_used:
        basic = base64.b64encode(f"{cid}:{value}".encode())
        for place, blob in (("database", dump), ("logs", logs), ("metrics", metrics)):
            assert value.encode() not in blob, f"a token or secret leaked into the {place}"
            assert value[5:25].encode() not in blob, f"part of a secret leaked into the {place}"
            assert basic not in blob
