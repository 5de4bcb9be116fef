"""Traefik ForwardAuth and Envoy HTTP `ext_authz` against a real `tokengate authz`.

Neither proxy is packaged here, so these tests send the decision service the requests each
one sends by its documentation, built from the configuration `tokengate edge-config` prints:
Traefik `GET`s the `forwardAuth.address` with the `authRequestHeaders` and its own
X-Forwarded-Method/-Proto/-Host/-Uri/-For; Envoy sends the original method to `path_prefix` +
the original path and query, with Host, Authorization, `Content-Length: 0` and the
`allowed_headers`. Then the configurations themselves must parse and say what they must.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.dpop import bare_challenges
from tests.support.edge import EdgeStack, edge_stack
from tokengate.edge.configs import EdgeOptions, render

pytestmark = pytest.mark.e2e
IDENTITY = ("x-auth-subject", "x-auth-client-id", "x-auth-scope")


def _options(authz_url: str) -> EdgeOptions:
    return EdgeOptions.parse("127.0.0.1:8080", "http://127.0.0.1:8000", authz_url)


def _traefik(authz_url: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render("traefik", _options(authz_url)))
    return config


def _envoy(authz_url: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(render("envoy", _options(authz_url)))
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    """One `tokengate serve` + `tokengate authz` for the module."""
    with edge_stack(tmp_path_factory.mktemp("contracts")) as running:
        yield running


class Traefik:
    """Sends what Traefik's ForwardAuth sends, per the configuration it was given."""

    def __init__(self, authz_url: str) -> None:
        auth = _traefik(authz_url)["http"]["middlewares"]["tokengate-authz"]["forwardAuth"]
        self.address: str = auth["address"]
        self.allowed: list[str] = auth["authRequestHeaders"]

    def check(self, method: str, uri: str, client_headers: dict[str, str]) -> httpx.Response:
        """The check for a client request `method uri` with `client_headers`."""
        headers = {k: v for k, v in client_headers.items() if k in self.allowed}
        headers |= {
            "X-Forwarded-Method": method,
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "api.example",
            "X-Forwarded-Uri": uri,
            "X-Forwarded-For": "192.0.2.10",
        }
        return httpx.get(self.address, headers=headers)


class Envoy:
    """Sends what Envoy's HTTP ext_authz sends, per the configuration it was given."""

    def __init__(self, authz_url: str) -> None:
        hcm = _hcm(_envoy(authz_url))
        ext = hcm["http_filters"][0]["typed_config"]
        self.prefix: str = ext["http_service"]["path_prefix"]
        self.allowed = {p["exact"] for p in ext["allowed_headers"]["patterns"]}
        self.base = authz_url

    def check(self, method: str, uri: str, client_headers: dict[str, str]) -> httpx.Response:
        """The check for a client request `method uri` with `client_headers`."""
        headers = {k: v for k, v in client_headers.items() if k.lower() in self.allowed}
        headers |= {
            "Host": "api.example",
            "Content-Length": "0",
            "x-envoy-expected-rq-timeout-ms": "1000",
            "x-forwarded-proto": "http",
            "x-request-id": "7d0c1f3e-0000-4000-8000-000000000000",
        }
        # The target as Envoy sends it: httpx would resolve dot segments in a URL.
        target = (self.prefix + uri).encode("latin-1")
        request = httpx.Request(method, self.base + "/", headers=headers)
        request.extensions["target"] = target
        with httpx.Client() as client:
            return client.send(request)


Proxy = Traefik | Envoy


@pytest.fixture(params=[Traefik, Envoy], ids=["traefik", "envoy"])
def proxy(request: pytest.FixtureRequest, stack: EdgeStack) -> Proxy:
    """Each proxy's check requests, aimed at the running decision service."""
    kind: type[Proxy] = request.param
    return kind(stack.authz_url)


def test_valid_token_gets_identity_headers(proxy: Proxy, stack: EdgeStack) -> None:
    """200 with sub, client_id and scope, by the custom header and by Authorization: Bearer."""
    token = stack.token()
    for headers in ({"X-Access-Token": token}, {"Authorization": f"Bearer {token}"}):
        answer = proxy.check("GET", "/auth-api/x?page=2", headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-auth-client-id"] == stack.client[0]
        assert answer.headers["x-auth-scope"] == "read"


def test_unprotected_path_gets_no_identity(proxy: Proxy, stack: EdgeStack) -> None:
    """200 without identity headers off the protected paths, even with a token."""
    answer = proxy.check("GET", "/public/x", {"X-Access-Token": stack.token()})
    assert answer.status_code == 200
    assert not [name for name in IDENTITY if name in answer.headers]


def test_missing_and_invalid_tokens_get_the_challenge(proxy: Proxy) -> None:
    """401: a bare challenge without a token, `invalid_token` with a bad one (RFC 6750 §3)."""
    missing = proxy.check("GET", "/auth-api/x", {})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == bare_challenges("tokengate")
    invalid = proxy.check("GET", "/auth-api/x", {"X-Access-Token": "tgat_nope"})
    assert invalid.status_code == 401
    assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    assert invalid.json()["error"] == "invalid_token"


def test_missing_scope_is_403(proxy: Proxy, stack: EdgeStack) -> None:
    """403 `insufficient_scope` naming the scope the rule needs."""
    answer = proxy.check("POST", "/auth-api/items", {"X-Access-Token": stack.token()})
    assert answer.status_code == 403
    assert 'scope="write"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    "uri",
    ["/public/../auth-api/x", "/public/%2e%2e/auth-api/x", "/auth-api%2Fx", "/public/..;/auth-api"],
)
def test_ambiguous_targets_are_400(proxy: Proxy, uri: str) -> None:
    """Dot segments, encoded dots and slashes, `..;`: 400 `invalid_request`, never a 200."""
    answer = proxy.check("GET", uri, {})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_traefik_client_x_original_headers_do_not_reach_authz(stack: EdgeStack) -> None:
    """authRequestHeaders lets only the token headers through: a client's X-Original-URI stays."""
    traefik = Traefik(stack.authz_url)
    spoof = {"X-Original-URI": "/public/x", "X-Original-Method": "GET"}
    assert traefik.check("GET", "/auth-api/x", spoof).status_code == 401


def test_outage_is_503_for_uncached_and_200_for_cached(tmp_path: Path) -> None:
    """Authorization server down: a cached token still passes; an uncached one gets 503."""
    with edge_stack(tmp_path) as own:
        cached, uncached = own.token(), own.token()
        proxies: list[Proxy] = [Traefik(own.authz_url), Envoy(own.authz_url)]
        for proxy in proxies:
            assert proxy.check("GET", "/auth-api/x", {"X-Access-Token": cached}).status_code == 200
        own.server.stop()
        for proxy in proxies:
            assert proxy.check("GET", "/auth-api/x", {"X-Access-Token": cached}).status_code == 200
            down = proxy.check("GET", "/auth-api/x", {"X-Access-Token": uncached})
            assert down.status_code == 503
            assert down.headers["retry-after"]


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    hcm: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm


def test_traefik_yaml_says_what_it_must() -> None:
    """Router → strip → forwardAuth → service; answer headers copied; `_` spellings removed."""
    http = _traefik("http://127.0.0.1:9100")["http"]
    router = http["routers"]["tokengate"]
    assert router["middlewares"] == ["tokengate-strip-identity", "tokengate-authz"]
    assert router["service"] == "tokengate-upstream"
    auth = http["middlewares"]["tokengate-authz"]["forwardAuth"]
    assert auth["address"] == "http://127.0.0.1:9100/decide"
    assert auth["trustForwardHeader"] is False
    assert auth["authRequestHeaders"] == ["X-Access-Token", "Authorization", "DPoP"]
    assert auth["authResponseHeaders"] == ["X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope"]
    stripped = http["middlewares"]["tokengate-strip-identity"]["headers"]["customRequestHeaders"]
    assert stripped["X_Auth_Subject"] == ""
    assert stripped["X-Auth_Client_Id"] == ""
    assert len(stripped) == 3 + 7 + 3
    servers = http["services"]["tokengate-upstream"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://127.0.0.1:8000"}]


def test_envoy_yaml_says_what_it_must() -> None:
    """ext_authz before the router, fails closed with 503, strips identity before any filter."""
    config = _envoy("http://127.0.0.1:9100")
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8080}
    hcm = _hcm(config)
    assert [f["name"] for f in hcm["http_filters"]] == [
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.router",
    ]
    ext = hcm["http_filters"][0]["typed_config"]
    assert ext["failure_mode_allow"] is False
    assert ext["status_on_error"] == {"code": "ServiceUnavailable"}
    assert ext["http_service"]["path_prefix"] == "/envoy"
    assert ext["http_service"]["server_uri"]["cluster"] == "tokengate_authz"
    assert ext["allowed_headers"]["patterns"] == [
        {"exact": "x-access-token", "ignore_case": True},
        {"exact": "authorization", "ignore_case": True},
        {"exact": "dpop", "ignore_case": True},
        {"exact": "x-forwarded-proto", "ignore_case": True},
    ]
    upstream = ext["http_service"]["authorization_response"]["allowed_upstream_headers"]
    assert [p["exact"] for p in upstream["patterns"]] == list(IDENTITY)
    early = hcm["early_header_mutation_extensions"][0]["typed_config"]["mutations"]
    assert [m["remove"] for m in early] == list(IDENTITY)
    options = hcm["common_http_protocol_options"]
    assert options["headers_with_underscores_action"] == "DROP_HEADER"
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    assert hcm["normalize_path"] is True
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    endpoint = clusters["tokengate_authz"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert endpoint["endpoint"]["address"]["socket_address"]["port_value"] == 9100
