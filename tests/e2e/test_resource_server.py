"""The example resource server as a real process in front of a real `tokengate serve`.

Introspection calls are counted by a small reverse proxy between the resource server and the
authorization server (the authorization server has no request counter to read yet): it counts
`POST /oauth2/introspect` requests that actually reached the authorization server's side.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.dpop import bare_challenges
from tests.support.servers import (
    TOKENGATE,
    ServerProcess,
    create_client,
    free_port,
    running_server,
    wait_http,
)

pytestmark = pytest.mark.e2e

INTROSPECT_PATH = "/oauth2/introspect"
SHORT_CACHE_TTL = 1.0
SHORT_TOKEN_TTL = 2
REALM = "tokengate-example"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}


class CountingProxy:
    """A threaded HTTP reverse proxy that counts introspection requests it forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.introspections = 0
        self.delay = 0.0  # seconds added to each introspection, to widen the concurrency window
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=10.0)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to send requests meant for the upstream."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        """Send one request upstream, counting it first if it is an introspection."""
        if method == "POST" and path == INTROSPECT_PATH:
            with self._lock:
                self.introspections += 1
            time.sleep(self.delay)
        return self._http.request(method, path, headers=headers, content=body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request logging."""

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                try:
                    upstream = proxy.forward(self.command, self.path, headers, body)
                except httpx.TransportError:
                    self._send(502, [], b"")
                    return
                kept = [
                    (k, v)
                    for k, v in upstream.headers.items()
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
                ]
                self._send(upstream.status_code, kept, upstream.content)

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@dataclass(frozen=True)
class Credentials:
    """Clients registered at the authorization server for these tests."""

    app: tuple[str, str]
    short_lived: tuple[str, str]
    resource_server: tuple[str, str]


@contextlib.contextmanager
def resource_server(
    rs_client: tuple[str, str],
    log_dir: Path,
    *,
    introspection_url: str | None = None,
    issuer: str | None = None,
    cache_max_ttl: float = 60.0,
) -> Iterator[tuple[str, Path]]:
    """Run `tokengate example-resource-server` on a free port; yields (base URL, log file)."""
    port = free_port()
    if introspection_url is not None:
        target = ["--introspection-url", introspection_url]
    else:
        assert issuer is not None, "give introspection_url or issuer"
        target = ["--issuer", issuer]
    args = [
        *TOKENGATE,
        "example-resource-server",
        "--port",
        str(port),
        *target,
        "--client-id",
        rs_client[0],
        "--cache-max-ttl",
        str(cache_max_ttl),
        "--no-revocation-events",  # caching on its own here; events: test_revocation_push.py
    ]
    env = {**os.environ, "TOKENGATE_RS_CLIENT_SECRET": rs_client[1]}  # not on the command line
    log_path = log_dir / f"resource-server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/public/ping", proc=process)
        yield base, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _token(server: ServerProcess, client: tuple[str, str], scope: str) -> str:
    response = httpx.post(
        server.base_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=client,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _revoke(server: ServerProcess, client: tuple[str, str], token: str) -> None:
    response = httpx.post(server.base_url + "/oauth2/revoke", data={"token": token}, auth=client)
    assert response.status_code == 200, response.text


def _call(base: str, token: str | None, path: str = "/auth-api/hello") -> httpx.Response:
    headers = {"X-Access-Token": token} if token else {}
    return httpx.get(base + path, headers=headers, timeout=10.0)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database for this module's authorization server."""
    return f"sqlite:///{tmp_path_factory.mktemp('as') / 'tokengate.db'}"


@pytest.fixture(scope="module")
def credentials(database: str) -> Credentials:
    """An app client, an app client with 2-second tokens, and the resource server's client."""
    return Credentials(
        app=create_client(database, "app", "read write"),
        short_lived=create_client(database, "short", "read", ttl=SHORT_TOKEN_TTL),
        resource_server=create_client(database, "rs", "", introspect=True),
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the processes of this module write their logs."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def auth_server(database: str, credentials: Credentials, logs: Path) -> Iterator[ServerProcess]:
    """`tokengate serve` for the whole module (the outage test starts its own)."""
    with running_server(database, log_dir=logs) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(auth_server: ServerProcess) -> Iterator[CountingProxy]:
    """The counting proxy in front of the authorization server."""
    with CountingProxy(auth_server.base_url) as counting:
        yield counting


@pytest.fixture(scope="module")
def rs(credentials: Credentials, proxy: CountingProxy, logs: Path) -> Iterator[str]:
    """The example resource server, caching up to 60 s, introspecting through the proxy."""
    url = proxy.url + INTROSPECT_PATH
    with resource_server(credentials.resource_server, logs, introspection_url=url) as (base, _):
        yield base


@pytest.fixture(scope="module")
def short_cache_rs(credentials: Credentials, proxy: CountingProxy, logs: Path) -> Iterator[str]:
    """The example resource server with a 1-second cache, for revocation latency."""
    url = proxy.url + INTROSPECT_PATH
    with resource_server(
        credentials.resource_server, logs, introspection_url=url, cache_max_ttl=SHORT_CACHE_TTL
    ) as (base, _):
        yield base


def test_valid_token_is_served_with_its_claims(
    rs: str, auth_server: ServerProcess, credentials: Credentials
) -> None:
    """A valid token → 200 from either header; /auth-api/me echoes the introspected claims."""
    token = _token(auth_server, credentials.app, "read")
    assert _call(rs, token).status_code == 200
    bearer = httpx.get(rs + "/auth-api/hello", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    me = _call(rs, token, "/auth-api/me").json()
    assert me["active"] is True
    assert me["client_id"] == credentials.app[0]
    assert me["scope"] == "read"
    assert me["iss"] == auth_server.issuer
    assert me["exp"] > time.time()


def test_no_token_and_public_paths(rs: str) -> None:
    """No token → 401 with a bare challenge on /auth-api/**; /public/** needs nothing."""
    refused = _call(rs, None)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == bare_challenges(REALM)
    assert _call(rs, None, "/public/ping").status_code == 200


def test_missing_scope_is_403(
    rs: str, auth_server: ServerProcess, credentials: Credentials
) -> None:
    """A read-only token on POST /auth-api/items → 403 insufficient_scope, scope="write"."""
    token = _token(auth_server, credentials.app, "read")
    response = httpx.post(rs + "/auth-api/items", headers={"X-Access-Token": token}, json={})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="write"' in response.headers["www-authenticate"]
    writer = _token(auth_server, credentials.app, "write")
    created = httpx.post(rs + "/auth-api/items", headers={"X-Access-Token": writer}, json={"a": 1})
    assert created.status_code == 201


def test_disagreeing_headers_are_400_without_introspection(
    rs: str, auth_server: ServerProcess, credentials: Credentials, proxy: CountingProxy
) -> None:
    """Custom header and Bearer header with different tokens → 400 invalid_request."""
    first, second = (_token(auth_server, credentials.app, "read") for _ in range(2))
    before = proxy.introspections
    response = httpx.get(
        rs + "/auth-api/hello",
        headers={"X-Access-Token": first, "Authorization": f"Bearer {second}"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert proxy.introspections == before


def test_revoked_token_is_401_once_the_cache_entry_is_gone(
    short_cache_rs: str, auth_server: ServerProcess, credentials: Credentials
) -> None:
    """Revocation takes effect within --cache-max-ttl (no event subscription yet)."""
    token = _token(auth_server, credentials.app, "read")
    assert _call(short_cache_rs, token).status_code == 200
    _revoke(auth_server, credentials.app, token)
    time.sleep(SHORT_CACHE_TTL + 0.2)
    response = _call(short_cache_rs, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_expired_token_is_401_without_an_introspection_call(
    rs: str, auth_server: ServerProcess, credentials: Credentials, proxy: CountingProxy
) -> None:
    """Once the cached exp has passed the token is refused from cache alone."""
    token = _token(auth_server, credentials.short_lived, "read")
    before = proxy.introspections
    assert _call(rs, token).status_code == 200
    exp = _call(rs, token, "/auth-api/me").json()["exp"]
    assert proxy.introspections == before + 1
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    response = _call(rs, token)
    assert response.status_code == 401
    assert "expired" in response.headers["www-authenticate"]
    assert proxy.introspections == before + 1


@pytest.mark.anyio
async def test_thousand_concurrent_requests_cause_one_introspection(
    rs: str, auth_server: ServerProcess, credentials: Credentials, proxy: CountingProxy
) -> None:
    """1,000 concurrent requests with one fresh token → exactly one introspection call."""
    token = _token(auth_server, credentials.app, "read")
    before = proxy.introspections
    proxy.delay = 0.2  # most requests arrive while the one introspection is in flight
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    try:
        async with httpx.AsyncClient(base_url=rs, limits=limits, timeout=60.0) as http:

            async def one() -> None:
                response = await http.get("/auth-api/hello", headers={"X-Access-Token": token})
                statuses.append(response.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(1000):
                    group.start_soon(one)
    finally:
        proxy.delay = 0.0
    assert statuses == [200] * 1000
    assert proxy.introspections == before + 1


def test_outage_is_503_fast_while_cached_tokens_pass(
    database: str, credentials: Credentials, logs: Path
) -> None:
    """AS stopped: a cached token still passes, an unseen one gets 503 + Retry-After quickly."""
    with running_server(database, log_dir=logs) as server:
        cached = _token(server, credentials.app, "read")
        unseen = _token(server, credentials.app, "read")
        with resource_server(credentials.resource_server, logs, issuer=server.issuer) as (
            base,
            log_path,
        ):
            assert _call(base, cached).status_code == 200  # also proves RFC 8414 discovery
            server.stop()
            assert _call(base, cached).status_code == 200
            for _ in range(7):  # through retries, then with the circuit open
                started = time.monotonic()
                response = _call(base, unseen)
                elapsed = time.monotonic() - started
                assert response.status_code == 503
                assert int(response.headers["retry-after"]) >= 1
                assert elapsed < 3.5  # the default total introspection timeout is 3 s
            rs_logs = log_path.read_text(errors="replace")
    for secret in (cached, unseen, credentials.resource_server[1]):
        assert secret not in rs_logs
