"""RFC 9701 signed introspection responses end to end, on SQLite and PostgreSQL: out of the
box, verified by our resource-server library and by oauth4webapi (panva, from npm), and a key
rotation that two replicas sharing the database agree on."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.node import run_node
from tests.support.servers import create_client, run_cli, running_server
from tokengate.cli.key_encryption import KEK_ENV
from tokengate.core.key_sealing import new_kek
from tokengate.resource import ValidatorSettings, create_validator

pytestmark = pytest.mark.e2e
JWT = "application/token-introspection+jwt"


def _env(database_url: str) -> dict[str, str]:
    """SQLite needs nothing (a KEK file appears beside it); PostgreSQL is given one."""
    return {} if database_url.startswith("sqlite") else {KEK_ENV: new_kek()}


def _token(base_url: str, client: tuple[str, str]) -> str:
    data = {"grant_type": "client_credentials"}
    answer = httpx.post(base_url + "/oauth2/token", data=data, auth=client)
    return str(answer.json()["access_token"])


def _signing_kid(base_url: str, rs: tuple[str, str]) -> str:
    """The kid in the header of a signed answer from this replica."""
    answer = httpx.post(
        base_url + "/oauth2/introspect", data={"token": "x"}, auth=rs, headers={"Accept": JWT}
    )
    assert answer.headers["content-type"] == JWT, answer.text
    header = answer.text.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _published(base_url: str) -> list[str]:
    return [k["kid"] for k in httpx.get(base_url + "/oauth2/jwks").json()["keys"]]


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_signed_out_of_the_box(database_url: str, tmp_path: Path) -> None:
    """A fresh server signs; our validator and oauth4webapi both verify what it signs."""
    env = _env(database_url)
    rs = create_client(database_url, "rs", "read", introspect=True)
    app = create_client(database_url, "app", "read")
    with running_server(database_url, log_dir=tmp_path, env=env) as server:
        token = _token(server.base_url, app)
        settings = ValidatorSettings(
            rs[0], rs[1], issuer=server.issuer, signed_introspection=True, revocation_events=False
        )

        async def validate() -> tuple[bool, bool]:
            async with create_validator(settings) as validator:
                good = await validator.introspector.introspect(token)
                bad = await validator.introspector.introspect("tga_unknown")
                return good.active, bad.active

        assert asyncio.run(validate()) == (True, False)
        proc = run_node("signed_introspection.mjs", server.issuer, rs[0], rs[1], token)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout) == {"content_type": JWT, "active": True, "scope": "read"}
    if database_url.startswith("sqlite"):
        assert Path(database_url.removeprefix("sqlite:///") + ".kek").stat().st_mode & 0o077 == 0


def test_two_replicas_agree_on_a_rotation(database_url: str, tmp_path: Path) -> None:
    """Both replicas publish the new key before it signs, both switch to it, and both drop the
    old one after the grace period."""
    env = _env(database_url)
    rs = create_client(database_url, "rs", "read", introspect=True)
    fast = ["--key-refresh-interval", "0.2"]
    with (
        running_server(database_url, log_dir=tmp_path, env=env, extra_args=fast) as one,
        running_server(database_url, one.issuer, log_dir=tmp_path, env=env, extra_args=fast) as two,
    ):
        old = _signing_kid(one.base_url, rs)
        assert _signing_kid(two.base_url, rs) == old  # racing first starts made one key
        out = run_cli("keys", "rotate", "--delay", "5", "--grace", "3", "--json",
                      "--database", database_url, env=env)  # fmt: skip
        new = json.loads(out)["kid"]
        _eventually(lambda: all(_published(s.base_url) == [old, new] for s in (one, two)))
        assert {_signing_kid(s.base_url, rs) for s in (one, two)} == {old}  # not yet used
        _eventually(lambda: {_signing_kid(s.base_url, rs) for s in (one, two)} == {new})
        _eventually(lambda: all(_published(s.base_url) == [new] for s in (one, two)))
        listed = run_cli("keys", "list", "--database", database_url, env=env)
        assert f"{new}  RS256  signing" in listed


def test_rotation_through_the_server(database_url: str, tmp_path: Path) -> None:
    """`keys rotate --server`: the CLI holds no KEK; the server seals the key and signs with it."""
    env = _env(database_url)
    rs = create_client(database_url, "rs", "read", introspect=True)
    made = run_cli("admin-tokens", "create", "--admin", "--database", database_url, "--json")
    (token_file := tmp_path / "admin").write_text(json.loads(made)["admin_token"])
    with running_server(database_url, log_dir=tmp_path, env=env) as server:
        old = _signing_kid(server.base_url, rs)
        remote = ["--server", server.base_url, "--admin-token-file", str(token_file)]
        out = run_cli("keys", "rotate", "--delay", "0", "--alg", "ES256", "--json", *remote)
        new = json.loads(out)["kid"]
        _eventually(lambda: _signing_kid(server.base_url, rs) == new)
        assert new != old
        listed = run_cli("keys", "list", *remote)
        assert f"{new}  ES256  signing" in listed
        assert f"{old}  RS256  published" in listed


def test_workers_share_one_first_key(database_url: str, tmp_path: Path) -> None:
    """`serve --workers 2` on a fresh database: the racing first starts store one key, and
    every worker signs with it."""
    env = _env(database_url)
    rs = create_client(database_url, "rs", "read", introspect=True)
    with running_server(
        database_url, log_dir=tmp_path, env=env, extra_args=["--workers", "2"]
    ) as s:
        workers: set[int] = set()
        for _ in range(200):  # until both workers have answered (the kernel spreads connections)
            workers.add(httpx.get(s.base_url + "/healthz").json()["worker"])
            if workers == {0, 1}:
                break
        assert workers == {0, 1}
        kids = {_signing_kid(s.base_url, rs) for _ in range(40)}
    assert len(kids) == 1
    listed = run_cli("keys", "list", "--json", "--database", database_url, env=env)
    assert [json.loads(line)["kid"] for line in listed.splitlines()] == list(kids)
