"""The failed-authentication throttle of a real `tokengate serve` under a flood from many
loopback addresses (127.0.0.0/8 is all loopback on Linux: each client binds its own)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import create_client, running_server

pytestmark = pytest.mark.e2e

FORM = {"grant_type": "client_credentials"}
WINDOW = 60.0  # the throttle's fixed windows, on the monotonic clock the server reads too


def window_with_time_left(seconds: float) -> None:
    """Wait, if need be, until the current throttle window has `seconds` left."""
    left = WINDOW - time.monotonic() % WINDOW
    if left < seconds:
        time.sleep(left + 0.1)


def from_address(address: str, base_url: str) -> httpx.Client:
    """A keep-alive HTTP client whose connections leave from `address`."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, base_url=base_url, timeout=10)


def test_flood_from_other_addresses_keeps_the_lock_out(tmp_path: Path) -> None:
    """800 failures for random client ids from 20 addresses (each its own /24) overflow a
    100-counter table: the locked (client, address) pair stays at 429 and the real client,
    from its own address, still gets tokens."""
    db = f"sqlite:///{tmp_path / 'flood.db'}"
    client_id, secret = create_client(db, "victim", "read")
    args = ["--max-auth-failures", "3", "20", "--max-auth-failure-keys", "100"]
    with running_server(db, log_dir=tmp_path, extra_args=args) as server:
        window_with_time_left(4)  # the whole test runs inside one window (it takes ~2 s)
        with from_address("127.0.0.2", server.base_url) as attacker:
            wrong = [attacker.post("/oauth2/token", data=FORM, auth=(client_id, "wrong"))]
            wrong += [attacker.post("/oauth2/token", data=FORM, auth=(client_id, "wrong"))]
            wrong += [attacker.post("/oauth2/token", data=FORM, auth=(client_id, "wrong"))]
            assert [r.status_code for r in wrong] == [401, 401, 401]
            assert (
                attacker.post("/oauth2/token", data=FORM, auth=(client_id, secret)).status_code
                == 429
            )
        statuses: dict[int, int] = {}
        for n in range(20):
            with from_address(f"127.1.{n}.1", server.base_url) as flood:
                for _ in range(40):
                    auth = (f"tgc_{secrets.token_hex(12)}", "wrong")
                    status = flood.post("/oauth2/token", data=FORM, auth=auth).status_code
                    statuses[status] = statuses.get(status, 0) + 1
        assert statuses == {401: 400, 429: 400}  # 20 per address counted, then refused
        with from_address("127.0.0.2", server.base_url) as attacker:
            again = attacker.post("/oauth2/token", data=FORM, auth=(client_id, secret))
            assert again.status_code == 429
            assert 0 < int(again.headers["retry-after"]) <= 61
        with from_address("127.0.0.1", server.base_url) as owner:
            assert (
                owner.post("/oauth2/token", data=FORM, auth=(client_id, secret)).status_code == 200
            )
