"""After a full run, no token and no client secret can be found in the database, the logs or
the metrics (RFC 6749 §10.3/§10.10, RFC 9700 §4.9.3): only their SHA-256 digests are kept."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import httpx
import pytest

from tests.support.hygiene import database_dump
from tests.support.servers import create_client, run_cli, running_server
from tokengate.core.credentials import hash_value

pytestmark = pytest.mark.e2e


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
    dump = database_dump(database_url)
    assert b'"status": 200' in logs or b'"status":200' in logs  # the access log was on
    assert hash_value(tokens[0]).encode() in dump  # we are looking at the right data
    for value in tokens + secrets_used:
        basic = base64.b64encode(f"{cid}:{value}".encode())
        for place, blob in (("database", dump), ("logs", logs), ("metrics", metrics)):
            assert value.encode() not in blob, f"a token or secret leaked into the {place}"
            assert value[5:25].encode() not in blob, f"part of a secret leaked into the {place}"
            assert basic not in blob


def test_no_secret_after_every_management_feature(database_url: str, tmp_path: Path) -> None:
    """Rotation with grace, admin and initial access tokens, RFC 7591/7592 registration (and
    its rotating registration tokens), `apply` with secrets from env and file, the remote CLI
    and the audit log: none of their secrets is in the database, the logs (JSON, debug,
    access), the metrics or the audit log (CLI and API)."""
    used: list[str] = []
    cid, secret = create_client(database_url, "svc", "read")
    used.append(secret)
    made = run_cli("admin-tokens", "create", "--admin", "--database", database_url, "--json")
    admin = json.loads(made)["admin_token"]
    made = run_cli("admin-tokens", "create", "--database", database_url, "--json")
    initial = json.loads(made)["initial_access_token"]
    used += [admin, initial]
    env_secret, file_secret = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    (secret_file := tmp_path / "edge.secret").write_text(file_secret)
    (declared := tmp_path / "clients.toml").write_text(
        '[[client]]\nclient_id = "billing"\nscope = "read"\nsecret_env = "BILLING_SECRET"\n'
        f'[[client]]\nclient_id = "edge"\nsecret_file = "{secret_file}"\n'
    )
    run_cli("apply", str(declared), "--database", database_url, env={"BILLING_SECRET": env_secret})
    used += [env_secret, file_secret]
    (token_file := tmp_path / "admin.token").write_text(admin)
    args = ["--log-format", "json", "--access-log", "--log-level", "debug"]
    with running_server(database_url, log_dir=tmp_path, extra_args=args) as server:
        base, bearer = server.base_url, {"Authorization": f"Bearer {admin}"}
        remote = ["--server", base, "--admin-token-file", str(token_file)]
        rotated = json.loads(
            run_cli("clients", "rotate-secret", cid, "--grace", "60", *remote, "--json")
        )
        used.append(rotated["client_secret"])
        for who, value in ((cid, secret), (cid, rotated["client_secret"]), ("billing", env_secret)):
            response = httpx.post(base + "/oauth2/token", data={"grant_type": "client_credentials"},
                                  auth=(who, value))  # fmt: skip
            used.append(response.json()["access_token"])
        answer = httpx.post(base + "/oauth2/register", json={"scope": "read"},
                            headers={"Authorization": f"Bearer {initial}"}).json()  # fmt: skip
        used += [answer["client_secret"], answer["registration_access_token"]]
        registration = {"Authorization": f"Bearer {answer['registration_access_token']}"}
        read = httpx.get(answer["registration_client_uri"], headers=registration)
        used.append(read.json()["registration_access_token"])
        httpx.get(answer["registration_client_uri"], headers={"Authorization": f"Bearer {initial}"})
        run_cli("tokens", "revoke", used[-4], *remote)
        httpx.post(base + "/admin/api/tokens/revoke", json={"token": used[-5]}, headers=bearer)
        api_audit = httpx.get(base + "/admin/api/audit", headers=bearer).content
        metrics = httpx.get(base + "/metrics").content
    cli_audit = run_cli("audit", "--json", "--database", database_url).encode()
    logs = server.log_path.read_bytes()
    dump = database_dump(database_url)
    assert b"client_registered" in cli_audit
    assert b"client_secret_rotated" in api_audit
    assert b'"tokengate.audit"' in logs
    for value in used:
        for place, blob in (("database", dump), ("logs", logs), ("metrics", metrics),
                            ("audit log", cli_audit), ("audit API", api_audit)):  # fmt: skip
            assert value.encode() not in blob, f"a secret leaked into the {place}"
            assert value[6:26].encode() not in blob, f"part of a secret leaked into the {place}"


def test_no_secret_after_using_the_admin_console(database_url: str, tmp_path: Path) -> None:
    """Sign in to the console, create, rotate, revoke by value, sign out: no session id (login
    form's or signed-in), CSRF token, admin token, client secret or access token is in the
    database, the logs, the metrics or the audit log. (The browser walk checks the same.)"""
    admin = json.loads(
        run_cli("admin-tokens", "create", "--admin", "--database", database_url, "--json")
    )["admin_token"]
    used = [admin]
    args = ["--admin-console", "--log-format", "json", "--access-log", "--log-level", "debug"]
    with running_server(database_url, log_dir=tmp_path, extra_args=args) as server:
        base = server.base_url
        with httpx.Client(base_url=base, headers={"Origin": base}) as browser:
            login = browser.get("/admin/login")
            csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
            used += [csrf, browser.cookies["tokengate_admin"]]
            browser.post("/admin/login", data={"csrf": csrf, "admin_token": admin})
            used.append(browser.cookies["tokengate_admin"])
            created = browser.get("/admin/clients")
            csrf = created.text.split('name="csrf" value="')[1].split('"')[0]
            page = browser.post("/admin/clients", data={"csrf": csrf, "name": "svc"})
            cid = page.text.split('id="client-id">')[1].split("<")[0]
            used.append(page.text.split('id="client-secret">')[1].split("<")[0])
            page = browser.post(
                "/admin/clients/rotate", data={"csrf": csrf, "client_id": cid, "grace": "60"}
            )
            used.append(new := page.text.split('id="client-secret">')[1].split("<")[0])
            token = httpx.post(base + "/oauth2/token", data={"grant_type": "client_credentials"},
                               auth=(cid, new)).json()["access_token"]  # fmt: skip
            used.append(token)
            revoked = browser.post("/admin/tokens/revoke", data={"csrf": csrf, "token": token})
            assert "Token revoked." in browser.get(revoked.headers["location"]).text
            used.append(csrf)
            assert browser.post("/admin/logout", data={"csrf": csrf}).status_code == 303
        metrics = httpx.get(base + "/metrics").content
    audit = run_cli("audit", "--json", "--database", database_url).encode()
    logs = server.log_path.read_bytes()
    dump = database_dump(database_url)
    assert b"client_secret_rotated" in audit
    assert b'"path":"/admin/tokens/revoke"' in logs or b'"path": "/admin/tokens/revoke"' in logs
    for value in used:
        for place, blob in (("database", dump), ("logs", logs), ("metrics", metrics),
                            ("audit log", audit)):  # fmt: skip
            assert value.encode() not in blob, f"a secret leaked into the {place}"
            assert value[6:26].encode() not in blob, f"part of a secret leaked into the {place}"
