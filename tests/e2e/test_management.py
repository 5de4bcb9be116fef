"""Issue 12 end to end, on SQLite and PostgreSQL, over real processes: rotation with grace on
two replicas and across a restart, RFC 7591/7592 registration with an initial access token
from the CLI, the CLI driving a server (`--server`), and the audit log read three ways (CLI,
API, JSON log stream)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    run_cli,
    running_server,
)

pytestmark = pytest.mark.e2e
GRANT = {"grant_type": "client_credentials"}


def token_status(server: ServerProcess, client_id: str, secret: str) -> int:
    """The token endpoint's status for these Basic credentials."""
    return httpx.post(
        server.base_url + "/oauth2/token", data=GRANT, auth=(client_id, secret)
    ).status_code


def admin_token(database_url: str, *extra: str) -> str:
    """`tokengate admin-tokens create --json`'s token value."""
    made = json.loads(
        run_cli("admin-tokens", "create", "--database", database_url, "--json", *extra)
    )
    return str(made["admin_token" if "--admin" in extra else "initial_access_token"])


def test_rotation_with_grace_on_two_replicas_and_across_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    """Both secrets work on both replicas during the grace (the old one cached there), a
    restart changes nothing, and the old one stops everywhere within a second of the end."""
    cid, old = create_client(database_url, "svc", "read")
    args = ["--log-format", "json"]
    with (
        running_server(database_url, log_dir=tmp_path, extra_args=args) as a,
        running_server(database_url, log_dir=tmp_path, extra_args=args) as b,
    ):
        assert [token_status(s, cid, old) for s in (a, b)] == [200, 200]  # cached on both
        out = run_cli(
            "clients", "rotate-secret", cid, "--grace", "10", "--database", database_url, "--json"
        )
        new = json.loads(out)["client_secret"]
        shown = json.loads(run_cli("clients", "show", cid, "--database", database_url))
        end = shown["secrets"][1]["valid_until"]
        assert [s["active"] for s in shown["secrets"]] == [True, True]
        for server in (a, b):
            assert token_status(server, cid, new) == 200
            assert token_status(server, cid, old) == 200
        a.restart()
        assert end - time.time() > 0.5, "the machine is too slow for this test's 10 s grace"
        assert token_status(a, cid, old) == 200
        stopped = {}
        while len(stopped) < 2 and time.time() < end + 5:
            for name, server in (("a", a), ("b", b)):
                if name not in stopped and token_status(server, cid, old) == 401:
                    stopped[name] = time.time()
            time.sleep(0.05)
        assert set(stopped) == {"a", "b"}
        assert all(end - 0.05 <= at <= end + 1.0 for at in stopped.values()), (end, stopped)
        assert [token_status(s, cid, new) for s in (a, b)] == [200, 200]
    shown = json.loads(run_cli("clients", "show", cid, "--database", database_url))
    assert shown["secrets"][1]["active"] is False


def test_rotation_with_grace_zero_cuts_the_old_secret_at_once(
    database_url: str, tmp_path: Path
) -> None:
    """`--grace 0` (and no --grace) keeps the behaviour before issue 12."""
    cid, old = create_client(database_url, "svc", "read")
    with running_server(database_url, log_dir=tmp_path) as server:
        assert token_status(server, cid, old) == 200
        run_cli("clients", "rotate-secret", cid, "--grace", "0", "--database", database_url)
        deadline = time.time() + 1.0
        while token_status(server, cid, old) != 401:  # the cached entry goes with the event
            assert time.time() < deadline, "old secret still accepted a second after rotation"
            time.sleep(0.02)
        shown = json.loads(run_cli("clients", "show", cid, "--database", database_url))
        assert [s["secret"] for s in shown["secrets"]] == ["current"]


def test_registration_read_update_delete(database_url: str, tmp_path: Path) -> None:
    """An initial access token from the CLI registers a client over HTTP; it gets tokens;
    RFC 7592 read, update and delete work with the rotating registration access token."""
    iat = admin_token(database_url, "--ttl", "600")
    with running_server(database_url, log_dir=tmp_path) as server:
        base = server.base_url
        meta = httpx.get(base + "/.well-known/oauth-authorization-server").json()
        assert meta["registration_endpoint"] == base + "/oauth2/register"
        denied = httpx.post(meta["registration_endpoint"], json={"client_name": "x"})
        assert denied.status_code == 401
        answer = httpx.post(
            meta["registration_endpoint"], json={"client_name": "dyn", "scope": "read"},
            headers={"Authorization": f"Bearer {iat}"},
        ).json()  # fmt: skip
        assert token_status(server, answer["client_id"], answer["client_secret"]) == 200
        uri, rat = answer["registration_client_uri"], answer["registration_access_token"]
        read = httpx.get(uri, headers={"Authorization": f"Bearer {rat}"}).json()
        update = {
            k: v for k, v in read.items() if not k.startswith(("registration_", "client_id_"))
        }
        updated = httpx.put(
            uri, json=update | {"scope": "read write"},
            headers={"Authorization": f"Bearer {read['registration_access_token']}"},
        )  # fmt: skip
        assert (updated.status_code, updated.json()["scope"]) == (200, "read write")
        rat = updated.json()["registration_access_token"]
        assert httpx.delete(uri, headers={"Authorization": f"Bearer {rat}"}).status_code == 204
        assert token_status(server, answer["client_id"], answer["client_secret"]) == 401


def test_cli_drives_a_remote_server(database_url: str, tmp_path: Path) -> None:
    """`--server` with an admin token file: create, list, show, rotate, revoke, disable,
    delete, mint a token and read the audit log, all through the management API."""
    token_file = tmp_path / "admin.token"
    token_file.write_text(admin_token(database_url, "--admin"))
    with running_server(database_url, log_dir=tmp_path) as server:
        remote = ["--server", server.base_url, "--admin-token-file", str(token_file)]
        made = json.loads(run_cli("clients", "create", "svc", "--scope", "read", *remote, "--json"))
        cid, secret = made["client_id"], made["client_secret"]
        access = httpx.post(server.base_url + "/oauth2/token", data=GRANT, auth=(cid, secret))
        listed = json.loads(run_cli("clients", "list", *remote, "--json"))
        assert [(c["client_id"], c["tokens_issued_last_hour"]) for c in listed] == [(cid, 1)]
        rotated = json.loads(
            run_cli("clients", "rotate-secret", cid, "--grace", "60", *remote, "--json")
        )
        assert token_status(server, cid, rotated["client_secret"]) == 200
        assert len(json.loads(run_cli("clients", "show", cid, *remote))["secrets"]) == 2
        assert run_cli("tokens", "revoke", access.json()["access_token"], *remote) == "revoked\n"
        iat = json.loads(run_cli("admin-tokens", "create", "--ttl", "60", *remote, "--json"))
        assert iat["initial_access_token"].startswith("tgadm_")
        run_cli("clients", "disable", cid, *remote)
        run_cli("clients", "delete", cid, *remote)
        missing = run_cli("clients", "show", cid, *remote, check=False)
        assert missing == ""
        lines = run_cli("audit", "--client", cid, "--json", *remote).splitlines()
        actions = [json.loads(line)["action"] for line in lines]
        assert actions == ["client_created", "client_secret_rotated", "token_revoked",
                           "client_disabled", "client_deleted"]  # fmt: skip
        actors = {json.loads(line)["actor"] for line in lines}
        assert len(actors) == 1
        assert actors.pop().startswith("admin-token:tgadmid_")
        bad = tmp_path / "bad.token"
        bad.write_text("tgadm_not_a_token")
        assert "401 invalid_token" in _stderr("clients", "list", "--server", server.base_url,
                                              "--admin-token-file", str(bad))  # fmt: skip


def test_admin_tokens_listed_and_revoked_locally_and_remotely(
    database_url: str, tmp_path: Path
) -> None:
    """`admin-tokens list` shows ids and states, never values; `admin-tokens revoke` (through
    one replica's API, or on the database) refuses the token at once on every replica."""
    operator_file = tmp_path / "operator.token"
    operator_file.write_text(admin_token(database_url, "--admin"))
    leaked = json.loads(
        run_cli("admin-tokens", "create", "--admin", "--name", "leaked", "--database",
                database_url, "--json")
    )  # fmt: skip
    other = json.loads(run_cli("admin-tokens", "create", "--database", database_url, "--json"))
    with (
        running_server(database_url, log_dir=tmp_path) as a,
        running_server(database_url, log_dir=tmp_path) as b,
    ):
        bearer = {"Authorization": f"Bearer {leaked['admin_token']}"}
        assert [httpx.get(s.base_url + "/admin/api/clients", headers=bearer).status_code
                for s in (a, b)] == [200, 200]  # fmt: skip
        remote = ["--server", a.base_url, "--admin-token-file", str(operator_file)]
        listed = [json.loads(line) for line in run_cli("admin-tokens", "list", *remote,
                                                       "--json").splitlines()]  # fmt: skip
        assert leaked["admin_token"] not in str(listed)
        states = {t["token_id"]: (t["name"], t["state"]) for t in listed}
        assert states[leaked["token_id"]] == ("leaked", "active")
        assert run_cli("admin-tokens", "revoke", leaked["token_id"], *remote) == (
            f"revoked {leaked['token_id']}\n"
        )
        assert [httpx.get(s.base_url + "/admin/api/clients", headers=bearer).status_code
                for s in (a, b)] == [401, 401]  # fmt: skip
        again = run_cli("admin-tokens", "revoke", leaked["token_id"], *remote, check=False)
        assert again == ""
        run_cli("admin-tokens", "revoke", other["token_id"], "--database", database_url)
        iat = {"Authorization": f"Bearer {other['initial_access_token']}"}
        assert httpx.post(b.base_url + "/oauth2/register", json={}, headers=iat).status_code == 401
        text = run_cli("admin-tokens", "list", "--database", database_url)
        assert f"{leaked['token_id']}  admin     revoked" in text
        assert other["initial_access_token"] not in text


def _stderr(*args: str) -> str:
    """A failing command's standard error."""
    proc = subprocess.run(
        [*TOKENGATE, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    return proc.stderr


def test_audit_log_in_the_cli_the_api_and_the_log_stream(database_url: str, tmp_path: Path) -> None:
    """Every management action and security event is in `tokengate audit --json` (one object
    per line, naming its client), in the API, and on the server's JSON log stream."""
    cid, _ = create_client(database_url, "svc", "read")
    admin = admin_token(database_url, "--admin")
    args = ["--log-format", "json", "--max-auth-failures", "2", "50"]
    with running_server(database_url, log_dir=tmp_path, extra_args=args) as server:
        headers = {"Authorization": f"Bearer {admin}"}
        api = server.base_url + "/admin/api"
        httpx.post(f"{api}/clients/{cid}/rotate-secret", json={"grace": 5}, headers=headers)
        httpx.post(server.base_url + "/oauth2/register", json={})  # refused: no token
        for _ in range(4):  # throttling engages after two failures
            httpx.post(server.base_url + "/oauth2/token", data=GRANT, auth=(cid, "wrong"))
        from_api = httpx.get(f"{api}/audit", headers=headers).json()["entries"]
    since = str(from_api[0]["occurred_at"])
    lines = run_cli("audit", "--json", "--since", since, "--database", database_url).splitlines()
    from_cli = [json.loads(line) for line in lines]
    assert [e["action"] for e in from_cli] == [e["action"] for e in from_api]
    actions = [e["action"] for e in from_cli]
    for expected in ("client_created", "admin_token_created", "client_secret_rotated",
                     "registration_refused", "throttling_engaged"):  # fmt: skip
        assert expected in actions
    assert all("client_id" in e for e in from_cli)
    assert [e["client_id"] for e in from_cli if e["action"] == "throttling_engaged"] == [cid]
    assert run_cli("audit", "--client", "tgc_nobody", "--database", database_url) == ""
    logged = [json.loads(line)["audit"] for line in server.logs().splitlines()
              if line.startswith("{") and '"tokengate.audit"' in line]  # fmt: skip
    server_side = [{k: v for k, v in e.items() if k != "position"} for e in from_cli
                   if e["actor"] != "cli"]  # fmt: skip
    assert logged == server_side
