"""Connection and request-head limits on real servers under the attacks that once worked
(huge header, a flood of headers, unfinished big heads, slowloris, idle connections holding
every descriptor), each while a legitimate client keeps getting answers (its p99 printed).

Scaled down where the point survives: 8 MiB headers rather than 64, 100,000 header fields
rather than a million, a 1 s head deadline. Run against the authorization server and the
authz decision service; the example resource server and the gateway get a smoke of each limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import resource
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.support.abuse import (
    head_start,
    hold_unfinished_heads,
    legitimate_client,
    peak_rss_mib,
    send_and_read,
    status_of,
    trickle,
)
from tests.support.servers import (
    create_client,
    free_port,
    running_process,
    running_server,
)

pytestmark = pytest.mark.e2e
TOKENGATE = [sys.executable, "-m", "tokengate"]
HEADER_TIMEOUT = 1.0
FAST = ["--header-timeout", str(HEADER_TIMEOUT), "--keep-alive-timeout", "2"]
MiB = 1024 * 1024
ATTACK_SECONDS = 2.0
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A running server: where to attack it, and what a legitimate request looks like."""

    name: str
    port: int
    pid: int
    legit_url: str
    legit_headers: dict[str, str]


@dataclass(frozen=True)
class Issuer:
    """A `tokengate serve` with a client token and an introspecting client for validators."""

    url: str
    database: str
    token: str
    validator_env: Callable[[str], dict[str, str]]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    """The authorization server every resource-side target validates against."""
    tmp = tmp_path_factory.mktemp("issuer")
    database = f"sqlite:///{tmp / 'tokengate.db'}"
    client = create_client(database, "app", "read")
    rs_id, rs_secret = create_client(database, "rs", "", introspect=True)
    with running_server(database, log_dir=tmp, extra_args=FAST) as server:
        form = {"grant_type": "client_credentials"}
        token = httpx.post(server.base_url + "/oauth2/token", data=form, auth=client).json()
        yield Issuer(
            server.base_url,
            database,
            token["access_token"],
            lambda prefix: {f"{prefix}_CLIENT_ID": rs_id, f"{prefix}_CLIENT_SECRET": rs_secret},
        )


@contextlib.contextmanager
def started(
    kind: str,
    issuer: Issuer,
    log_dir: Path,
    extra: Sequence[str] = (),
    preexec_fn: Callable[[], object] | None = None,
) -> Iterator[Target]:
    """`tokengate serve` (its own database) or `tokengate authz` (validating at `issuer`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if kind == "serve":
        args = [*TOKENGATE, "serve", "--port", str(port), "--database", issuer.database]
        env: dict[str, str] = {}
        legit, headers = url + "/.well-known/oauth-authorization-server", {}
    else:
        args = [*TOKENGATE, "authz", "--port", str(port), "--issuer", issuer.url,
                "--protect", "/**", "--cache-max-ttl", "600"]  # fmt: skip
        env = issuer.validator_env("TOKENGATE_AUTHZ")
        legit = url + "/decide"
        headers = {"X-Original-Method": "GET", "X-Original-URI": "/x",
                   "X-Access-Token": issuer.token}  # fmt: skip
    log = log_dir / f"{kind}-{port}.log"
    with running_process([*args, *FAST, *extra], url + "/healthz", log, env, preexec_fn) as proc:
        yield Target(kind, port, proc.pid, legit, headers)


@pytest.fixture(scope="module", params=["serve", "authz"])
def target(
    request: pytest.FixtureRequest, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """Each server the attacks run against, shared by the attacks (each cleans up after it)."""
    with started(request.param, issuer, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def test_a_huge_header_is_refused_with_431(target: Target) -> None:
    """One 8 MiB header value: 431 once the head passes the limit, not read to its end."""
    with legitimate_client(target.legit_url, target.legit_headers) as probe:
        request = head_start() + b"X-Big: " + b"a" * (8 * MiB) + b"\r\n\r\n"
        answers = asyncio.run(_for(ATTACK_SECONDS, 3, lambda: send_and_read(target.port, request)))
    assert {status_of(a) for a in answers} == {431}
    assert b"connection: close" in answers[0].lower()
    probe.check(f"{target.name} huge header")


def test_too_many_header_fields_are_refused_with_431(target: Target) -> None:
    """100,000 small header fields (a flood within the byte limit's reach): 431."""
    with legitimate_client(target.legit_url, target.legit_headers) as probe:
        request = head_start() + b"a: b\r\n" * 100_000 + b"\r\n"
        few = head_start() + b"a: b\r\n" * 150 + b"\r\n"  # few bytes, too many fields
        answers = asyncio.run(_for(ATTACK_SECONDS, 2, lambda: send_and_read(target.port, request)))
        answers += asyncio.run(_each(2, lambda: send_and_read(target.port, few)))
    assert {status_of(a) for a in answers} == {431}
    probe.check(f"{target.name} header flood")


def test_unfinished_big_heads_keep_memory_bounded(target: Target) -> None:
    """16 connections each sending 8 MiB of one header, never finishing: the peak RSS grows
    by a few MiB, not by the 128 MiB sent (each is refused past the limit)."""
    before = peak_rss_mib(target.pid)
    with legitimate_client(target.legit_url, target.legit_headers) as probe:
        attack = functools.partial(hold_unfinished_heads, target.port, count=16, size=8 * MiB)
        answers = [a for wave in asyncio.run(_for(ATTACK_SECONDS, 1, attack)) for a in wave]
    grown = peak_rss_mib(target.pid) - before
    print(f"{target.name}: peak RSS +{grown:.1f} MiB for {len(answers)} x 8 MiB unfinished heads")
    assert {status_of(a) for a in answers} == {431}
    assert grown < 32
    probe.check(f"{target.name} unfinished heads")


def test_slowloris_heads_are_closed_at_the_deadline(target: Target) -> None:
    """200 connections trickling a header a byte every 0.1 s: each answered 408 and closed
    once the head deadline passes."""
    with legitimate_client(target.legit_url, target.legit_headers) as probe:
        results = asyncio.run(_each(200, lambda: trickle(target.port, 0.1, limit=10)))
    held = max(seconds for seconds, _ in results)
    print(f"{target.name}: slowloris connections held at most {held:.2f} s")
    assert {status_of(answer) for _, answer in results} == {408}
    assert held < HEADER_TIMEOUT + 3
    probe.check(f"{target.name} slowloris")


@pytest.mark.parametrize("kind", ["serve", "authz"])
def test_idle_connections_cannot_take_the_descriptors(
    kind: str, issuer: Issuer, tmp_path: Path
) -> None:
    """The server limited to 1,024 file descriptors, 1,200 idle connections (more than it has
    descriptors; kept open past their keep-alive time, reopened when closed): new legitimate
    connections are still answered. (Without the cap, every descriptor is taken.)"""
    lower = _limit_descriptors(1024)
    keep = ["--keep-alive-timeout", "300"]  # only the connection cap protects here
    with started(kind, issuer, tmp_path, keep, preexec_fn=lower) as running:
        with legitimate_client(running.legit_url, running.legit_headers) as probe:
            asyncio.run(_hold_idle(running.port, 1200, seconds=3))
        assert httpx.get(running.legit_url, headers=running.legit_headers).status_code == 200
    probe.check(f"{kind} 1,200 idle connections, RLIMIT_NOFILE 1024", minimum=20)


def _limit_descriptors(count: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return lower


async def _hold_idle(port: int, count: int, seconds: float) -> None:
    """Open `count` connections that never send a byte; keep them `seconds`, reopening any the
    server closes (an attacker would)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def hold() -> None:
        while loop.time() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await reader.read(1)  # returns when the server closes it
            except (TimeoutError, ConnectionError):
                pass
            finally:
                writer.close()

    await asyncio.gather(*(hold() for _ in range(count)))


async def _each(count: int, attack: Callable[[], Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*(attack() for _ in range(count))))


async def _for(seconds: float, count: int, attack: Callable[[], Awaitable[T]]) -> list[T]:
    """`count` attackers side by side, each repeating `attack` until `seconds` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def repeat() -> list[T]:
        results = [await attack()]
        while loop.time() < deadline:
            results.append(await attack())
        return results

    waves = await asyncio.gather(*(repeat() for _ in range(count)))
    return [result for wave in waves for result in wave]


SMOKED = {
    "example-resource-server": ("TOKENGATE_RS", "/public/ping", "/auth-api/hello"),
    "gateway": ("TOKENGATE_GW", "/_tokengate/healthz", "/.well-known/oauth-authorization-server"),
}


@pytest.mark.parametrize("command", list(SMOKED))
def test_the_other_servers_have_the_same_limits(
    command: str, issuer: Issuer, tmp_path: Path
) -> None:
    """The example resource server and the gateway: 431 for a huge head and for too many
    fields, 408 for a trickled head, an idle connection closed, a legitimate client answered."""
    prefix, health, legit = SMOKED[command]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    where = (
        ["--listen", f"127.0.0.1:{port}", "--upstream", issuer.url]
        if command == "gateway"
        else ["--port", str(port)]
    )
    args = [*TOKENGATE, command, *where, "--issuer", issuer.url, *FAST]
    env = issuer.validator_env(prefix)
    headers = {"X-Access-Token": issuer.token}
    with (
        running_process(args, url + health, tmp_path / "server.log", env),
        legitimate_client(url + legit, headers) as probe,
    ):
        huge = head_start() + b"X-Big: " + b"a" * MiB + b"\r\n\r\n"
        many = head_start() + b"a: b\r\n" * 1000 + b"\r\n"
        answers = asyncio.run(_each(1, lambda: send_and_read(port, huge)))
        answers += asyncio.run(_each(1, lambda: send_and_read(port, many)))
        slow = asyncio.run(trickle(port, 0.1, limit=10))
        idle = asyncio.run(_idle_time(port))
    assert [status_of(a) for a in answers] == [431, 431]
    assert status_of(slow[1]) == 408
    assert slow[0] < HEADER_TIMEOUT + 3
    assert idle < 2 + 3
    probe.check(f"{command} smoke")


async def _idle_time(port: int) -> float:
    """Seconds the server keeps a connection that never sends a byte."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(10):
            await reader.read(1)
    finally:
        writer.close()
    return loop.time() - started
