"""SQLite's files under attack: a read-only or truncated `-shm`, a full disk.

Each ends in a refusal to start or a 503 with `Retry-After`, with a log line naming the file,
never a crash (a truncated `-shm` under a shared-mode server was SIGBUS, exit 135, nothing
logged). File modes do not bind root, so as root a file is made read-only with `chattr +i`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import TOKENGATE, create_client, free_port, running_process

pytestmark = pytest.mark.e2e

TOKEN = "/oauth2/token"
GRANT = {"grant_type": "client_credentials"}


def make_read_only(path: Path) -> None:
    """chmod 444, and for root (whom modes do not bind) the immutable attribute too."""
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, timeout=10)


def make_writable(path: Path) -> None:
    """Undo `make_read_only` (an immutable file cannot be deleted)."""
    if os.geteuid() == 0 and path.exists():
        subprocess.run(["chattr", "-i", str(path)], check=True, timeout=10)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The server's directory; files made read-only in it are made writable again after."""
    yield tmp_path
    for name in ("tokengate.db", "tokengate.db-wal", "tokengate.db-shm"):
        make_writable(tmp_path / name)


@contextlib.contextmanager
def server(
    data_dir: Path, *extra: str, preexec: Callable[[], None] | None = None
) -> Iterator[tuple[str, tuple[str, str], Path]]:
    """`tokengate serve` on a new database in `data_dir`: its URL, a client, its log."""
    db = data_dir / "tokengate.db"
    client = create_client(f"sqlite:///{db}", "files", "read")
    port, log = free_port(), data_dir / "serve.log"
    args = [*TOKENGATE, "serve", "--port", str(port), "--database", f"sqlite:///{db}", *extra]
    url = f"http://127.0.0.1:{port}"
    with running_process(args, url + "/healthz", log, preexec_fn=preexec) as process:
        yield url, client, log
        assert process.poll() is None, log.read_text()


def readonly_empty_file(path: Path) -> None:
    """What `cp /dev/null FILE; chmod 444 FILE` does: truncated in place, then read-only."""
    with path.open("wb"):
        pass
    make_read_only(path)


def issue(url: str, client: tuple[str, str], count: int) -> list[int]:
    """The statuses of `count` token requests."""
    with httpx.Client(base_url=url, auth=client, timeout=10) as http:
        return [http.post(TOKEN, data=GRANT).status_code for _ in range(count)]


def test_exclusive_server_survives_a_truncated_read_only_shm(data_dir: Path) -> None:
    """`--sqlite-exclusive`: no -shm is mapped, so one truncated and made read-only beside the
    running server changes nothing: every token request still gets its 200."""
    with server(data_dir, "--sqlite-exclusive") as (url, client, _):
        assert issue(url, client, 5) == [200] * 5
        shm = data_dir / "tokengate.db-shm"
        assert not shm.exists()
        readonly_empty_file(shm)
        assert issue(url, client, 50) == [200] * 50


def test_shared_server_killed_by_its_shm_says_so_and_will_not_restart(data_dir: Path) -> None:
    """Shared mode maps the -shm: truncated and made read-only under the running server, it is
    SIGBUS (no way round it but `--sqlite-exclusive`), now logged, and a restart refuses,
    naming the file, instead of crashing again."""
    db = data_dir / "tokengate.db"
    client = create_client(f"sqlite:///{db}", "files", "read")
    port, log = free_port(), data_dir / "serve.log"
    args = [*TOKENGATE, "serve", "--port", str(port), "--database", f"sqlite:///{db}"]
    url = f"http://127.0.0.1:{port}"
    with running_process(args, url + "/healthz", log) as process:
        assert issue(url, client, 5) == [200] * 5
        readonly_empty_file(data_dir / "tokengate.db-shm")
        process.wait(timeout=10)  # the event poller reads every 25 ms: no request needed
        assert process.returncode == -signal.SIGBUS
    assert "Fatal Python error: Bus error" in log.read_text()
    restarted = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert restarted.returncode != 0
    assert f"{data_dir / 'tokengate.db-shm'} is not readable and writable" in restarted.stderr


def test_shared_mode_refuses_to_start_on_a_read_only_shm(data_dir: Path) -> None:
    """A -shm the server cannot write, there before it starts: it exits, naming the file."""
    db = data_dir / "tokengate.db"
    create_client(f"sqlite:///{db}", "files", "read")
    shm = data_dir / "tokengate.db-shm"
    readonly_empty_file(shm)
    args = [*TOKENGATE, "serve", "--port", str(free_port()), "--database", f"sqlite:///{db}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert f"{shm} is not readable and writable by this process" in done.stderr, done.stderr


def limit_file_size() -> None:
    """In the child: files may not grow past 2 MiB (writes past it fail with EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))


def test_a_full_disk_answers_503_and_names_the_database(data_dir: Path) -> None:
    """The WAL cannot grow (the process's file-size limit, as on a full disk): token requests get
    503 + Retry-After, the log names the database, the server keeps answering."""
    with server(data_dir, "--sqlite-exclusive", preexec=limit_file_size) as (url, client, log):
        with httpx.Client(base_url=url, auth=client, timeout=10) as http:
            for _ in range(2000):
                response = http.post(TOKEN, data=GRANT)
                if response.status_code != 200:
                    break
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error"] == "temporarily_unavailable"
            assert http.get("/healthz").status_code in (200, 503)
        assert f"SQLite {data_dir / 'tokengate.db'}" in log.read_text()
