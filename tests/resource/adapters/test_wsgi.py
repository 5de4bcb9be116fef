"""The WSGI middleware driving the one async runtime from its loop thread (httpx.WSGITransport).

Every test builds the same `Validator` the ASGI middleware takes; request threads hand lookups
to the validator's loop thread, so the single-flight, the revocation-event subscriber and the
503-never-401 rule are the runtime's own, not a sync twin's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest

from tests.support.dpop import bare_challenges
from tests.support.fake_events import FakeEventServer, revocation_frame, sync_frame
from tokengate.core.credentials import hash_value
from tokengate.resource import Timeouts, ValidatorSettings, create_validator
from tokengate.resource.adapters.wsgi import CLAIMS_ENVIRON_KEY, TokenGateWSGIMiddleware
from tokengate.resource.protocol.policy import Policy, Rule
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.runtime.http import HttpTransport
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import FakeAuthorizationServer, HandlerTransport

POLICY = Policy(
    [
        Rule("/api/café", public=True),
        Rule("/api/write", methods=["POST"], scopes=["write"]),
        Rule("/api/**"),
    ]
)
Build = Callable[..., TokenGateWSGIMiddleware]


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A minimal WSGI app echoing the caller's subject."""
    claims = environ.get(CLAIMS_ENVIRON_KEY)
    body = json.dumps({"sub": claims.sub if claims else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def fake() -> FakeAuthorizationServer:
    """The authorization server behind the validator."""
    return FakeAuthorizationServer()


def _validator(
    fake: FakeAuthorizationServer, transport: HttpTransport | None = None, **settings: Any
) -> Validator:
    options: dict[str, Any] = {"revocation_events": False, **settings}
    config = ValidatorSettings(
        fake.client_id, fake.client_secret, introspection_url=fake.introspection_url, **options
    )
    return create_validator(config, transport=transport or fake.transport())


@pytest.fixture
def build(fake: FakeAuthorizationServer) -> Iterator[Build]:
    """Build WSGI middlewares over validators of `fake`; close their loop threads afterwards."""
    built: list[TokenGateWSGIMiddleware] = []

    def make(
        validator: Validator | None = None, policy: Policy = POLICY, **options: Any
    ) -> TokenGateWSGIMiddleware:
        chosen = validator if validator is not None else _validator(fake)
        app = TokenGateWSGIMiddleware(echo_app, chosen, policy=policy, realm="wsgi", **options)
        built.append(app)
        return app

    yield make
    for app in built:
        app.close()


def _http(app: TokenGateWSGIMiddleware) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://rs")


@pytest.fixture
def client(build: Build) -> Iterator[httpx.Client]:
    """An HTTP client talking to the protected WSGI app in-process."""
    with _http(build(token_header="X-Access-Token")) as http:
        yield http


def _call(app: TokenGateWSGIMiddleware, **environ: str) -> str:
    """Call the app with a bare environ; the status line it started."""
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> object:
        statuses.append(status)
        return None

    app({"REQUEST_METHOD": "GET", **environ}, start_response)  # type: ignore[arg-type]
    return statuses[0]


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_public_path_passes(client: httpx.Client) -> None:
    """Unprotected paths reach the app without a token."""
    assert client.get("/health").json() == {"sub": None}


def test_missing_token_is_401(client: httpx.Client) -> None:
    """No token → 401 with a bare Bearer challenge."""
    response = client.get("/api/x")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == bare_challenges("wsgi")
    assert int(response.headers["content-length"]) == len(response.content)


def test_valid_token_reaches_app(client: httpx.Client, fake: FakeAuthorizationServer) -> None:
    """The claims are in `environ["tokengate.claims"]`; the second request is a cache hit."""
    token = fake.issue(sub="bob")
    assert client.get("/api/x", headers={"X-Access-Token": token}).json() == {"sub": "bob"}
    bearer = client.get("/api/x", headers={"Authorization": f"Bearer {token}"})
    assert bearer.json() == {"sub": "bob"}
    assert fake.introspection_calls == 1


def test_a_miss_is_counted_once(build: Build, fake: FakeAuthorizationServer) -> None:
    """The request thread's first look and the runtime's lookup count one miss, then a hit."""
    validator = _validator(fake)
    app = build(validator)
    token = fake.issue()
    with _http(app) as http:
        http.get("/api/x", headers={"X-Access-Token": token})
        http.get("/api/x", headers={"X-Access-Token": token})
    assert (validator.stats.cache_misses.value, validator.stats.cache_hits.value) == (1, 1)


def test_scope_and_conflicts(client: httpx.Client, fake: FakeAuthorizationServer) -> None:
    """Missing scope → 403; disagreeing headers → 400; inactive → 401."""
    token = fake.issue(scope="read")
    forbidden = client.post("/api/write", headers={"X-Access-Token": token})
    assert forbidden.status_code == 403
    assert 'scope="write"' in forbidden.headers["www-authenticate"]
    conflict = client.get(
        "/api/x", headers={"X-Access-Token": token, "Authorization": "Bearer other"}
    )
    assert conflict.status_code == 400
    assert client.get("/api/x", headers={"X-Access-Token": "nope"}).status_code == 401


def test_scope_is_checked_on_a_cache_hit_too(
    client: httpx.Client, fake: FakeAuthorizationServer
) -> None:
    """The thread-local cache path decides scopes like the loop path does."""
    token = fake.issue(scope="read")
    assert client.get("/api/x", headers={"X-Access-Token": token}).status_code == 200
    assert client.post("/api/write", headers={"X-Access-Token": token}).status_code == 403
    assert fake.introspection_calls == 1


@pytest.mark.parametrize("failure", ["down", "timeout", 500, "garbage"])
def test_outage_is_503(client: httpx.Client, fake: FakeAuthorizationServer, failure: Any) -> None:
    """AS broken and nothing cached → 503 with Retry-After, never 401."""
    fake.failure = failure
    response = client.get("/api/x", headers={"X-Access-Token": fake.issue()})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "www-authenticate" not in response.headers


def test_garbage_token_with_an_unreachable_as_is_503_never_200(
    client: httpx.Client, fake: FakeAuthorizationServer
) -> None:
    """Regression: a token nobody issued, and no AS to ask, is never let through."""
    fake.failure = "down"
    for token in ("garbage", "x" * 300, "tgat_forged"):
        response = client.get("/api/x", headers={"X-Access-Token": token})
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"


def test_a_stuck_runtime_is_503_not_a_hung_thread(
    build: Build, fake: FakeAuthorizationServer
) -> None:
    """When the loop cannot answer within the validator's deadline (+1 s), the thread gives up."""

    def blocks_the_loop(request: HttpRequest) -> HttpResponse:
        time.sleep(1.5)  # a handler that never yields: the validator's own deadline cannot fire
        return HttpResponse(200, b'{"active":true}', None, "application/json")

    validator = _validator(fake, HandlerTransport(blocks_the_loop), timeouts=Timeouts.within(0.1))
    started = time.monotonic()
    status = _call(build(validator), PATH_INFO="/api/x", HTTP_AUTHORIZATION="Bearer t")
    assert status == "503 Service Unavailable"
    assert time.monotonic() - started < 1.45


def test_authorization_as_the_token_header(build: Build, fake: FakeAuthorizationServer) -> None:
    """Configuring the custom header as Authorization does not count it twice."""
    with _http(build(token_header="Authorization")) as http:
        response = http.get("/api/x", headers={"Authorization": f"Bearer {fake.issue(sub='c')}"})
    assert response.json() == {"sub": "c"}


def test_non_ascii_paths_are_matched_as_utf8(client: httpx.Client) -> None:
    """PEP 3333's latin-1 path is decoded back to UTF-8 before matching."""
    assert client.get("/api/caf%C3%A9").status_code == 200
    assert client.get("/api/cafe").status_code == 401


def test_pep3333_latin1_paths_are_decoded(build: Build) -> None:
    """A compliant server's latin-1-decoded UTF-8 path matches the UTF-8 rule."""
    app = build(policy=Policy([Rule("/café"), Rule("/**", public=True)]))
    assert _call(app, PATH_INFO="/café".encode().decode("latin-1")) == "401 Unauthorized"


ADMIN = Policy([Rule("/admin/**"), Rule("/**", public=True)])


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"RAW_URI": "/x%2Fy/../admin"}, id="gunicorn-raw-uri"),
        pytest.param({"REQUEST_URI": "/x%2Fy/../admin?q=1"}, id="uwsgi-request-uri"),
        pytest.param({"RAW_URI": "/x%2fy/../admin/"}, id="lower-case-escape"),
        pytest.param({"SCRIPT_NAME": "/app", "RAW_URI": "/app/x%2Fy/../admin"}, id="mounted-app"),
    ],
)
def test_raw_path_encoded_slash_cannot_shift_a_dot_dot(
    build: Build, environ: dict[str, str]
) -> None:
    """`/x%2Fy/../admin` is `/x/admin` decoded, but `/admin` as a proxy forwards it: protected,
    as the ASGI middleware protects it from `raw_path`."""
    app = build(policy=ADMIN)
    path = "/x/y/../admin" + ("/" if environ.get("RAW_URI", "").endswith("/") else "")
    assert _call(app, PATH_INFO=path, **environ) == "401 Unauthorized"


def test_without_a_raw_target_the_decoded_path_decides(build: Build) -> None:
    """A server giving no raw target leaves only PATH_INFO (the reason RAW_URI is read)."""
    assert _call(build(policy=ADMIN), PATH_INFO="/x/y/../admin").startswith("200")
    assert _call(build(policy=ADMIN), PATH_INFO="/x/../admin").startswith("401")


def test_fifty_threads_one_fresh_token_one_introspection(
    build: Build, fake: FakeAuthorizationServer
) -> None:
    """50 request threads asking for one uncached token share a single introspection."""
    transport = HandlerTransport(fake.handle)
    validator = _validator(fake, transport)

    async def gated(request: HttpRequest) -> HttpResponse:
        # Hold the one introspection until the 49 other threads are waiting on it (a counter
        # other tasks bump: there is no event to wait for).
        deadline = time.monotonic() + 5
        while validator.stats.singleflight_joins.value < 49 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        return await fake.handle(request)

    transport.handler = gated

    app = build(validator)
    token = fake.issue(sub="many")
    statuses: list[str] = []
    environ = {"PATH_INFO": "/api/x", "HTTP_X_ACCESS_TOKEN": token}
    threads = [
        threading.Thread(target=lambda: statuses.append(_call(app, **environ))) for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == ["200 OK"] * 50
    assert fake.introspection_calls == 1
    assert validator.stats.singleflight_joins.value == 49


def test_revocation_event_evicts_for_the_wsgi_app(
    build: Build, fake: FakeAuthorizationServer
) -> None:
    """The subscriber runs on the loop thread: a revocation event ends a cached token at once."""
    events = FakeEventServer(other=fake.transport())
    validator = _validator(fake, events, revocation_events=True, max_ttl=3600)
    subscriber = validator.subscriber
    assert subscriber is not None
    app = build(validator)
    _eventually(lambda: len(events.connections) == 1)
    events.connections[0].send(sync_frame(0))
    _eventually(lambda: subscriber.state == "live")
    token = fake.issue(sub="soon-revoked")
    environ = {"PATH_INFO": "/api/x", "HTTP_X_ACCESS_TOKEN": token}
    assert _call(app, **environ) == "200 OK"
    fake.revoke(token)
    assert _call(app, **environ) == "200 OK"  # cached: the AS is not asked again
    events.connections[0].send(revocation_frame(1, token_hash=hash_value(token)))
    _eventually(lambda: len(validator.cache) == 0)
    assert _call(app, **environ) == "401 Unauthorized"
    assert fake.introspection_calls == 2
    app.close()
    assert subscriber.state == "stopped"
    assert events.connections[0].closed


def test_one_validator_serves_several_wsgi_apps(
    build: Build, fake: FakeAuthorizationServer
) -> None:
    """Two middlewares over one validator share its loop thread and cache."""
    validator = _validator(fake)
    first, second = build(validator), build(validator)
    token = fake.issue()
    environ = {"PATH_INFO": "/api/x", "HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert _call(first, **environ) == "200 OK"
    assert _call(second, **environ) == "200 OK"
    assert fake.introspection_calls == 1
    assert validator.loop_thread() is validator.loop_thread()
