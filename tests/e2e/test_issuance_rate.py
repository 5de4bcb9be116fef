"""`serve --max-token-rate`: a client past its rate gets 429 + Retry-After, others do not."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import TOKENGATE, create_client, running_server

pytestmark = pytest.mark.e2e

GRANT = {"grant_type": "client_credentials"}


def test_a_client_past_its_rate_gets_429_and_recovers(tmp_path: Path) -> None:
    """5 tokens at once, then 429 `temporarily_unavailable` with Retry-After; another client is
    served meanwhile; after Retry-After the first is served again."""
    db = f"sqlite:///{tmp_path / 'tokengate.db'}"
    busy, other = create_client(db, "busy", "read"), create_client(db, "other", "read")
    with (
        running_server(db, log_dir=tmp_path, extra_args=["--max-token-rate", "1:5"]) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        answers = [http.post("/oauth2/token", data=GRANT, auth=busy) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        refused = answers[-1]
        assert refused.json()["error"] == "temporarily_unavailable"
        retry = int(refused.headers["retry-after"])
        assert retry == 1  # one token at 1 per second
        assert http.post("/oauth2/token", data=GRANT, auth=other).status_code == 200
        time.sleep(retry)
        assert http.post("/oauth2/token", data=GRANT, auth=busy).status_code == 200


def test_a_malformed_rate_is_refused_at_start(tmp_path: Path) -> None:
    """`--max-token-rate 0` stops `serve` before it listens, naming the option."""
    db = f"sqlite:///{tmp_path / 'tokengate.db'}"
    done = subprocess.run(
        [*TOKENGATE, "serve", "--database", db, "--port", "0", "--max-token-rate", "0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-token-rate" in done.stderr
