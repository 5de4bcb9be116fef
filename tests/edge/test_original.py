"""The original request of a forward-auth or ext_authz check (`tokengate.edge.original`)."""

from __future__ import annotations

import pytest

from tokengate.edge.original import (
    AmbiguousOriginal,
    OriginalRequest,
    from_envoy,
    from_forward_auth,
)


def _headers(**pairs: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in pairs.items()]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_headers(x_original_method="GET", x_original_uri="/a%20b?x=1"), id="nginx"),
        pytest.param(
            _headers(x_forwarded_method="GET", x_forwarded_uri="/a%20b?x=1"), id="traefik-caddy"
        ),
        pytest.param(
            _headers(
                x_original_method="GET",
                x_original_uri="/a%20b?x=1",
                x_forwarded_method="GET",
                x_forwarded_uri="/a%20b?x=1",
            ),
            id="both-agreeing",
        ),
    ],
)
def test_forward_auth_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """nginx's and Traefik's/Caddy's headers name the same original request."""
    assert from_forward_auth(headers) == OriginalRequest("GET", "/a b", b"/a%20b")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="none"),
        pytest.param(_headers(x_original_method="GET"), id="no-uri"),
        pytest.param(_headers(x_forwarded_uri="/x"), id="no-method"),
        pytest.param(
            [
                (b"x-original-method", b"GET"),
                (b"x-original-uri", b"/a"),
                (b"X-Original-URI", b"/b"),
            ],
            id="repeated",
        ),
        pytest.param(
            _headers(
                x_original_method="GET",
                x_original_uri="/public",
                x_forwarded_method="GET",
                x_forwarded_uri="/auth-api/x",
            ),
            id="disagreeing",
        ),
        pytest.param(_headers(x_original_method="G E T", x_original_uri="/x"), id="bad-method"),
        pytest.param(_headers(x_original_method="GET", x_original_uri="x"), id="not-origin-form"),
    ],
)
def test_missing_or_ambiguous_descriptions_are_refused(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """No description, half of one, or two that disagree: refused, never guessed."""
    with pytest.raises(AmbiguousOriginal):
        from_forward_auth(headers)


@pytest.mark.parametrize(
    "uri",
    [
        "/public/../auth-api/x",
        "/public/%2e%2e/auth-api/x",
        "/public%2Fauth-api",
        "/auth-api\\x",
        "/x/..;/auth-api",
        "/./auth-api",
    ],
)
def test_ambiguous_targets_are_refused(uri: str) -> None:
    """A target different parsers read differently is refused (as the gateway does)."""
    with pytest.raises(AmbiguousOriginal):
        from_forward_auth(_headers(x_original_method="GET", x_original_uri=uri))


def test_absolute_form_is_reduced_to_its_path() -> None:
    """Some proxies forward `http://host/path`: the path decides."""
    headers = _headers(x_forwarded_method="POST", x_forwarded_uri="https://api.example/items?q")
    assert from_forward_auth(headers) == OriginalRequest("POST", "/items", b"/items")


def test_envoy_path_prefix() -> None:
    """Envoy appends the original path to `path_prefix`; the method is the original's."""
    original = from_envoy("DELETE", b"/envoy/auth-api/items/1", b"x=1", "/envoy")
    assert original == OriginalRequest("DELETE", "/auth-api/items/1", b"/auth-api/items/1")
    assert from_envoy("GET", b"/envoy", b"", "/envoy").path == "/"


def test_envoy_encoded_slash_after_the_prefix_is_refused() -> None:
    """`/envoy%2F…` cannot smuggle a path past the prefix."""
    with pytest.raises(AmbiguousOriginal):
        from_envoy("GET", b"/envoy%2Fauth-api", b"", "/envoy")


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("/public#/../auth-api/items", id="fragment"),
        pytest.param("http://api.example/public#/../auth-api/items", id="absolute-fragment"),
        pytest.param("http://[api.example/auth-api/x", id="bad-authority"),
    ],
)
def test_fragments_and_unparsable_absolute_forms_are_refused(uri: str) -> None:
    """RFC 9112 §3.2: no `#` in a request target; an authority that does not parse is refused."""
    with pytest.raises(AmbiguousOriginal):
        from_forward_auth(_headers(x_original_method="GET", x_original_uri=uri))
