"""The proxy configurations `tokengate edge-config` prints (`tokengate.edge.configs`)."""

from __future__ import annotations

import re
from importlib.resources import files
from string import Template

import pytest
from click.testing import CliRunner

from tokengate.cli.edge_config import edge_config
from tokengate.edge.configs import KINDS, Address, BaseUrl, EdgeOptions, render, spellings

OPTIONS = EdgeOptions.parse("127.0.0.1:8080", "http://127.0.0.1:8000", "http://127.0.0.1:9100")
CUSTOM = EdgeOptions.parse(
    "[::1]:8443",
    "http://app.internal:8000/",
    "http://authz.internal:9100/edge",
    token_header="X-Api-Token",
    claim_headers=("X-User=sub", "X-Tenant=aud"),
)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_without_placeholders_left(kind: str) -> None:
    """Every template is fully substituted: no `$name` of string.Template is left."""
    source = files("tokengate.edge.configs").joinpath(f"{kind}.tmpl").read_text("utf-8")
    names = Template(source).get_identifiers()
    text = render(kind, CUSTOM)  # type: ignore[arg-type]
    assert names
    assert not [name for name in names if re.search(rf"\${name}\b", text)]
    assert text.endswith("\n")


def test_spellings_cover_each_separator() -> None:
    """Each `-` is kept or written `_`, every combination once."""
    assert spellings("X-Auth-Scope") == [
        "X-Auth-Scope",
        "X-Auth_Scope",
        "X_Auth-Scope",
        "X_Auth_Scope",
    ]
    assert spellings("Xuser") == ["Xuser"]


def test_nginx_checks_the_raw_target_and_replaces_identity_headers() -> None:
    """nginx sends $request_uri, clears X-Forwarded-*, sets each identity header from the answer."""
    text = render("nginx", OPTIONS)
    assert "proxy_set_header X-Original-URI $request_uri;" in text
    assert 'proxy_set_header X-Forwarded-Uri "";' in text
    # The origin a DPoP proof names (RFC 9449 §4.3 htu), never the client's copies.
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_set_header X-Forwarded-Host $http_host;" in text
    assert "proxy_pass http://tokengate_authz_8080/decide;" in text
    assert "underscores_in_headers off;" in text
    for name, var in [("X-Auth-Subject", "x_auth_subject"), ("X-Auth-Scope", "x_auth_scope")]:
        assert f"auth_request_set $tokengate_{var} $upstream_http_{var};" in text
        assert f"proxy_set_header {name} $tokengate_{var};" in text


def test_nginx_keeps_connections_alive() -> None:
    """Both pools keep connections (HTTP/1.1, no `Connection: close`), named per listen port."""
    text = render("nginx", OPTIONS)
    assert "upstream tokengate_authz_8080 {\n    server 127.0.0.1:9100;\n    keepalive 32;" in text
    assert "upstream tokengate_upstream_8080 {" in text
    assert text.count("proxy_http_version 1.1;") == 2
    assert text.count('proxy_set_header Connection "";') == 2


def test_nginx_maps_every_refusal_and_never_answers_500() -> None:
    """401 keeps its challenge; 403, 400 and anything else become 403, 400 and 503."""
    text = render("nginx", OPTIONS)
    assert "error_page 401 = @tokengate_unauthorized;" in text
    assert "error_page 403 500 = @tokengate_refused;" in text
    unauthorized = text.split("location @tokengate_unauthorized")[1].split("location")[0]
    assert '{"error":"invalid_dpop_proof"}' in unauthorized
    refused = text.split("location @tokengate_refused")[1]
    assert "return 400" in refused
    assert "return 403" in refused
    assert "return 503" in refused
    assert "return 500" not in text


def test_caddy_is_one_site_block_that_strips_every_spelling() -> None:
    """No global options; each -/_ spelling removed before the check; copies only when present."""
    text = render("caddy", CUSTOM)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert body.lstrip().startswith("http://:8443 {")
    assert "bind ::1" in text
    assert "request_header -X_User" in text
    assert "request_header -X-User" in text
    assert "reverse_proxy authz.internal:9100 {" in text
    assert "rewrite /edge/decide" in text
    assert "header_up -X-Original-URI" in text
    assert "@has_x_tenant expression `{http.reverse_proxy.header.X-Tenant} != null`" in text
    assert "reverse_proxy app.internal:8000\n" in text
    assert text.index("request_header -X-User") < text.index("reverse_proxy authz.internal")


def test_caddy_binds_nowhere_in_particular_for_a_wildcard_listen() -> None:
    """`0.0.0.0:80` listens on every interface: no bind line."""
    options = EdgeOptions.parse("0.0.0.0:80", "http://127.0.0.1:8000", "http://127.0.0.1:9100")
    assert "bind" not in render("caddy", options)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("listen", "127.0.0.1", "HOST:PORT", id="listen-no-port"),
        pytest.param("listen", "127.0.0.1:0", "1-65535", id="listen-port-0"),
        pytest.param("listen", "127.0.0.1:70000", "1-65535", id="listen-port-big"),
        pytest.param("listen", "bad host;:80", "host name", id="listen-injection"),
        pytest.param("listen", "[nope]:80", "IPv6", id="listen-bad-ipv6"),
        pytest.param("upstream", "https://a:1", "http://", id="upstream-https"),
        pytest.param("upstream", "http://a:1/base", "no path", id="upstream-path"),
        pytest.param("upstream", "http://a", "HOST:PORT", id="upstream-no-port"),
        pytest.param("upstream", "http://a:1/?x=1", "query", id="upstream-query"),
        pytest.param("upstream", "http://u@a:1", "user", id="upstream-user"),
        pytest.param("authz", "http://a:1/x;y", "letters", id="authz-path-chars"),
        pytest.param("authz", "http://a:1/../x", "letters", id="authz-dot-segment"),
        pytest.param("authz", "ftp://a:1", "http://", id="authz-scheme"),
        pytest.param("authz", "http://a:1/x y", "letters", id="authz-space"),
    ],
)
def test_refuses_bad_addresses(field: str, value: str, message: str) -> None:
    """Anything outside the narrow alphabet is refused before it reaches a config file."""
    args = {"listen": "127.0.0.1:8080", "upstream": "http://a:1", "authz": "http://b:2"}
    args[field] = value
    with pytest.raises(ValueError, match=message):
        EdgeOptions.parse(args["listen"], args["upstream"], args["authz"])


@pytest.mark.parametrize(
    ("token_header", "claim_headers", "message"),
    [
        pytest.param("X_Token", (), "no '_'", id="token-underscore"),
        pytest.param("X-Token\r\nX", (), "no '_'", id="token-crlf"),
        pytest.param("Authorization", (), "managed", id="token-authorization"),
        pytest.param("X-Access-Token", ("X-User",), "HEADER=CLAIM", id="claim-no-equals"),
        pytest.param("X-Access-Token", ("X-User=password",), "unknown claim", id="claim-unknown"),
        pytest.param("X-Access-Token", ("X_User=sub",), "no '_'", id="claim-underscore"),
        pytest.param("X-Access-Token", ("X-User=sub", "x-user=aud"), "twice", id="claim-twice"),
        pytest.param("X-Access-Token", ("X-Access-Token=sub",), "twice", id="claim-is-token"),
        pytest.param("X-Access-Token", ("Host=sub",), "managed", id="claim-host"),
        pytest.param("X-Access-Token", ("A-B-C-D-E-F-G=sub",), "at most", id="claim-long"),
        pytest.param("X-Access-Token", ("X--User=sub",), "no '_'", id="claim-double-dash"),
    ],
)
def test_refuses_bad_header_names(
    token_header: str, claim_headers: tuple[str, ...], message: str
) -> None:
    """Header names are letters and digits in `-`-separated words, each named once."""
    with pytest.raises(ValueError, match=message):
        EdgeOptions.parse("127.0.0.1:8080", "http://a:1", "http://b:2", token_header, claim_headers)


def test_parsed_addresses() -> None:
    """IPv6 keeps its brackets in URLs; a trailing slash on a base URL is dropped."""
    assert CUSTOM.listen == Address("::1", 8443)
    assert CUSTOM.listen.authority == "[::1]:8443"
    assert CUSTOM.upstream == BaseUrl(Address("app.internal", 8000))
    assert str(CUSTOM.authz) == "http://authz.internal:9100/edge"


def test_unknown_kind_is_refused() -> None:
    """Only the four proxies have templates."""
    with pytest.raises(ValueError, match="unknown proxy"):
        render("haproxy", OPTIONS)  # type: ignore[arg-type]


def test_cli_prints_the_rendered_config() -> None:
    """`tokengate edge-config nginx ...` prints exactly what `render` makes."""
    args = ["nginx", "--listen", "127.0.0.1:8080", "--upstream", "http://127.0.0.1:8000"]
    result = CliRunner().invoke(edge_config, [*args, "--authz", "http://127.0.0.1:9100"])
    assert result.exit_code == 0, result.output
    assert result.output == render("nginx", OPTIONS)


def test_cli_reads_the_environment_and_refuses_bad_input() -> None:
    """Options come from TOKENGATE_EDGE_*; a bad value is a usage error naming the option."""
    env = {
        "TOKENGATE_EDGE_LISTEN": "127.0.0.1:8080",
        "TOKENGATE_EDGE_UPSTREAM": "http://127.0.0.1:8000",
        "TOKENGATE_EDGE_AUTHZ": "http://127.0.0.1:9100",
        "TOKENGATE_EDGE_CLAIM_HEADER": "X-User=sub;X-Client=client_id",
    }
    result = CliRunner().invoke(edge_config, ["caddy"], env=env)
    assert result.exit_code == 0, result.output
    assert "request_header -X_Client" in result.output
    bad = CliRunner().invoke(edge_config, ["envoy", "--upstream", "https://x:1"], env=env)
    assert bad.exit_code == 2
    assert "--upstream" in bad.output
