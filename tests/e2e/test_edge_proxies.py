"""Real nginx and real Caddy, configured by `tokengate edge-config`, in front of an echo
upstream, asking a real `tokengate authz` that validates against a real `tokengate serve`.

Each flow runs through both proxies: the echo upstream answers with the headers and the raw
path it received, so a test sees exactly what got through.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.support.dpop import DpopKey, bare_challenges
from tests.support.edge import EdgeStack, echo_upstream, edge_stack
from tests.support.proxies import caddy, nginx, require_proxies
from tests.support.servers import free_port
from tokengate.edge.configs import EdgeOptions, Kind, render

pytestmark = pytest.mark.e2e
KINDS: tuple[Kind, ...] = ("nginx", "caddy")
IDENTITY = ("x-auth-subject", "x-auth-client-id", "x-auth-scope")
AMBIGUOUS = [
    "/public/../auth-api/x",
    "/public/./../auth-api/x",
    "/public/%2e%2e/auth-api/x",
    "/public/%2E%2E/auth-api/x",
    "/public%2F..%2Fauth-api/x",
    "/auth-api%2Fx",
    "/public/..;/auth-api/x",
    "/public/x\\..\\..\\auth-api/x",
]


@contextlib.contextmanager
def proxy(kind: Kind, stack: EdgeStack, upstream: str, root: Path) -> Iterator[str]:
    """`kind` configured by `render` on a free port; yields its base URL."""
    port = free_port()
    options = EdgeOptions.parse(f"127.0.0.1:{port}", upstream, stack.authz_url)
    url = f"http://127.0.0.1:{port}"
    run = nginx if kind == "nginx" else caddy
    with run(render(kind, options), root / kind, url + "/public/ready"):
        yield url


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's processes' files and logs."""
    require_proxies()
    return tmp_path_factory.mktemp("edge-proxies")


@pytest.fixture(scope="module")
def stack(tmp: Path) -> Iterator[EdgeStack]:
    """`tokengate serve` + `tokengate authz`, shared by the module."""
    with edge_stack(tmp) as running:
        yield running


@pytest.fixture(scope="module")
def upstream(tmp: Path) -> Iterator[str]:
    """The echo upstream."""
    with echo_upstream(tmp) as url:
        yield url


@pytest.fixture(scope="module", params=KINDS)
def edge(
    request: pytest.FixtureRequest, stack: EdgeStack, upstream: str, tmp: Path
) -> Iterator[str]:
    """Each real proxy in front of the echo upstream; yields its base URL."""
    with proxy(request.param, stack, upstream, tmp) as url:
        yield url


def send(
    url: str, target: str, headers: Sequence[tuple[str, str]] = (), method: str = "GET"
) -> httpx.Response:
    """`method target` sent as is (httpx would resolve dot segments of a URL)."""
    request = httpx.Request(method, url + "/", headers=headers)
    request.extensions["target"] = target.encode("latin-1")
    with httpx.Client(timeout=10) as client:
        return client.send(request)


def reached(answer: httpx.Response) -> bool:
    """True when the echo upstream answered."""
    return bool(answer.headers.get("x-upstream") == "echo")


def identity_seen(answer: httpx.Response) -> list[tuple[str, str]]:
    """Every header the upstream got whose name is an identity header in any -/_ spelling."""
    headers: list[list[str]] = answer.json()["headers"]
    return [(k, v) for k, v in headers if k.lower().replace("_", "-") in IDENTITY]


def test_valid_token_reaches_upstream_with_claims(edge: str, stack: EdgeStack) -> None:
    """200, and the upstream gets sub, client_id and scope (custom header and Bearer)."""
    token = stack.token()
    client_id = stack.client[0]
    for header in (("X-Access-Token", token), ("Authorization", f"Bearer {token}")):
        answer = send(edge, "/auth-api/x?page=2", [header])
        assert answer.status_code == 200, answer.text
        assert reached(answer)
        assert answer.json()["query"] == "page=2"
        assert sorted(identity_seen(answer)) == sorted(
            [
                ("x-auth-subject", client_id),
                ("x-auth-client-id", client_id),
                ("x-auth-scope", "read"),
            ]
        )


def test_no_token_is_401_with_the_challenge(edge: str) -> None:
    """401 with one bare `Bearer realm` challenge; the upstream never sees the request."""
    answer = send(edge, "/auth-api/x")
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate") == [bare_challenges("tokengate")]
    assert not reached(answer)
    invalid = send(edge, "/auth-api/x", [("X-Access-Token", "tgat_not-a-token")])
    assert invalid.status_code == 401
    assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    assert invalid.json()["error"] == "invalid_token"


def test_missing_scope_is_403(edge: str, stack: EdgeStack) -> None:
    """403 with the `insufficient_scope` challenge naming `write`, not forwarded."""
    answer = send(edge, "/auth-api/items", [("X-Access-Token", stack.token())], method="POST")
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert 'scope="write"' in answer.headers["www-authenticate"]
    assert not reached(answer)


@pytest.mark.parametrize("path", ["/auth-api/x", "/public/x"])
def test_spoofed_identity_never_reaches_upstream(edge: str, stack: EdgeStack, path: str) -> None:
    """A client's X-Auth-Subject, X_Auth_Subject, x-auth_scope: gone, protected path or not."""
    spoof = [
        ("X-Access-Token", stack.token()),
        ("X-Auth-Subject", "admin"),
        ("X-Auth-Subject", "admin-again"),
        ("X_Auth_Subject", "admin"),
        ("x-auth_scope", "admin"),
        ("X-Auth-Client_Id", "admin"),
        ("X-Original-URI", "/public/x"),
    ]
    answer = send(edge, path, spoof)
    assert answer.status_code == 200
    seen = identity_seen(answer)
    assert not [value for _, value in seen if value.startswith("admin")]
    if path == "/public/x":
        assert seen == []  # an unprotected path: no identity at all
    else:
        assert [k for k, _ in seen].count("x-auth-subject") == 1


@pytest.mark.parametrize("target", AMBIGUOUS)
def test_ambiguous_targets_never_reach_upstream(edge: str, target: str) -> None:
    """Dot segments, encoded dots and slashes, backslashes, `..;`: 400, upstream untouched."""
    answer = send(edge, target)
    assert answer.status_code == 400, answer.text
    assert not reached(answer)


def test_revoked_token_is_refused_within_a_second(edge: str, stack: EdgeStack) -> None:
    """Cached as long as the token lives, yet 401 within 1 s of revocation (the event)."""
    token = stack.token()
    assert send(edge, "/auth-api/x", [("X-Access-Token", token)]).status_code == 200
    stack.revoke(token)
    revoked = time.monotonic()
    while (status := send(edge, "/auth-api/x", [("X-Access-Token", token)]).status_code) == 200:
        assert time.monotonic() - revoked < 1.0, "still allowed 1 s after revocation"
        time.sleep(0.02)
    assert status == 401


@pytest.mark.parametrize("kind", KINDS)
def test_outages_are_503_never_500(kind: Kind, tmp_path: Path, upstream: str) -> None:
    """Server down: cached 200, uncached 503. Decision service down: 503 (nginx), 502 (Caddy)."""
    require_proxies()
    with edge_stack(tmp_path) as own, proxy(kind, own, upstream, tmp_path) as url:
        cached, uncached = own.token(), own.token()
        assert send(url, "/auth-api/x", [("X-Access-Token", cached)]).status_code == 200
        own.server.stop()
        assert send(url, "/auth-api/x", [("X-Access-Token", cached)]).status_code == 200
        down = send(url, "/auth-api/x", [("X-Access-Token", uncached)])
        assert down.status_code == 503
        assert down.headers["retry-after"]
        assert not reached(down)
        own.stop_authz()
        gone = send(url, "/auth-api/x", [("X-Access-Token", cached)])
        assert gone.status_code == (503 if kind == "nginx" else 502)
        assert not reached(gone)


def _bound_token(stack: EdgeStack, key: DpopKey) -> str:
    proof = key.proof(stack.server.issuer + "/oauth2/token")
    form = {"grant_type": "client_credentials"}
    answer = httpx.post(
        stack.server.base_url + "/oauth2/token",
        data=form,
        headers={"DPoP": proof},
        auth=stack.client,
    )
    assert answer.json()["token_type"] == "DPoP", answer.text
    return str(answer.json()["access_token"])


def test_dpop_bound_token_with_its_proof(edge: str, stack: EdgeStack) -> None:
    """RFC 9449 §7: the proof reaches authz and the upstream, checked for the URL the client
    called (the proxy's scheme and Host); replayed, or as Bearer, it is a relayed 401."""
    key = DpopKey()
    token = _bound_token(stack, key)
    url = edge + "/auth-api/x"
    headers = [
        ("Authorization", f"DPoP {token}"),
        ("DPoP", key.proof(url, "GET", access_token=token)),
    ]
    answer = send(edge, "/auth-api/x?page=2", headers)
    assert answer.status_code == 200, answer.text
    assert reached(answer)
    seen = {k.lower(): v for k, v in answer.json()["headers"]}
    assert seen["dpop"] == headers[1][1]
    replayed = send(edge, "/auth-api/x?page=2", headers)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    assert not reached(replayed)
    bearer = send(edge, "/auth-api/x", [("Authorization", f"Bearer {token}")])
    assert bearer.status_code == 401
    assert 'error="invalid_token"' in bearer.headers["www-authenticate"]
