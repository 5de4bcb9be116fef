"""Which header fields cross the gateway (RFC 9110 §7.6.1, §7.6.3), without I/O."""

from __future__ import annotations

import pytest

from tokengate.gateway.headers import (
    VIA,
    connection_named,
    downstream_response_headers,
    end_to_end,
    upstream_request_headers,
)

H = list[tuple[bytes, bytes]]


def forward(headers: H, **options: object) -> H:
    """Headers as the upstream would receive them from 198.51.100.1 over https."""
    defaults: dict[str, object] = {
        "client_host": "198.51.100.1",
        "scheme": "https",
        "upstream_authority": b"upstream:8000",
    }
    return upstream_request_headers(headers, **{**defaults, **options})  # type: ignore[arg-type]


def names(headers: H) -> list[bytes]:
    """The field names, in order."""
    return [name for name, _ in headers]


@pytest.mark.parametrize(
    "name",
    [
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    ],
)
def test_fixed_hop_by_hop_fields_are_dropped(name: bytes) -> None:
    """rfc9110-7.6.1: each fixed hop-by-hop field is removed, end-to-end ones stay."""
    assert end_to_end([(name, b"x"), (b"accept", b"*/*")]) == [(b"accept", b"*/*")]


def test_fields_named_in_connection_are_dropped() -> None:
    """rfc9110-7.6.1: every field listed in Connection (any case, any line) is removed."""
    headers = [
        (b"connection", b"close, X-Private"),
        (b"connection", b" x-other ,"),
        (b"x-private", b"1"),
        (b"X-Other", b"2"),
        (b"x-kept", b"3"),
    ]
    assert connection_named(headers) == {b"close", b"x-private", b"x-other"}
    assert end_to_end(headers) == [(b"x-kept", b"3")]


def test_drop_catches_underscore_spellings() -> None:
    """A name in `drop` is also removed when spelled with `_` (CGI maps both alike)."""
    headers = [(b"x-auth-subject", b"a"), (b"x_auth_subject", b"b"), (b"X_Auth_Subject", b"c")]
    assert end_to_end(headers, frozenset({b"x-auth-subject"})) == []


def test_custom_token_header_and_authorization_pass_untouched() -> None:
    """End-to-end fields, the token header included, reach the upstream byte for byte."""
    headers = [(b"x-access-token", b"tgat_abc"), (b"authorization", b"Bearer  tgat_abc ")]
    out = forward(headers)
    assert (b"x-access-token", b"tgat_abc") in out
    assert (b"authorization", b"Bearer  tgat_abc ") in out


def test_host_is_the_upstream_unless_preserved() -> None:
    """Host becomes the upstream authority; the client's goes to X-Forwarded-Host."""
    headers = [(b"host", b"api.example")]
    out = forward(headers)
    assert out[0] == (b"host", b"upstream:8000")
    assert (b"x-forwarded-host", b"api.example") in out
    assert forward(headers, preserve_host=True)[0] == (b"host", b"api.example")


def test_forwarded_headers_are_appended() -> None:
    """X-Forwarded-For/Proto/Host get this hop appended after the client's values."""
    headers = [
        (b"host", b"api.example"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-for", b"10.0.0.2"),
        (b"x-forwarded-proto", b"http"),
    ]
    out = dict(forward(headers))
    assert out[b"x-forwarded-for"] == b"10.0.0.1, 10.0.0.2, 198.51.100.1"
    assert out[b"x-forwarded-proto"] == b"http, https"
    assert out[b"x-forwarded-host"] == b"api.example"
    assert names(forward(headers)).count(b"x-forwarded-for") == 1


def test_connection_cannot_remove_the_gateways_own_forwarded_value() -> None:
    """Naming X-Forwarded-For in Connection drops the client's value, never the gateway's."""
    out = dict(forward([(b"connection", b"x-forwarded-for"), (b"x-forwarded-for", b"6.6.6.6")]))
    assert out[b"x-forwarded-for"] == b"198.51.100.1"


def test_expect_is_answered_here_and_via_is_added() -> None:
    """Expect is not forwarded (the gateway's server sent 100 Continue); Via names this hop."""
    out = forward([(b"expect", b"100-continue"), (b"content-length", b"3")])
    assert b"expect" not in names(out)
    assert (b"content-length", b"3") in out
    assert out[-1] == VIA


def test_response_headers_keep_repeats_and_drop_hop_by_hop() -> None:
    """Set-Cookie lines stay separate; Connection-named and fixed hop-by-hop fields go."""
    upstream = [
        (b"Content-Type", b"text/plain"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Connection", b"keep-alive, X-Secret"),
        (b"X-Secret", b"s"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    assert downstream_response_headers(upstream) == [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        VIA,
    ]
