"""RFC 6749 §4.4 client credentials at POST /oauth2/token."""

from __future__ import annotations

import base64

import pytest

from tokengate.core.credentials import is_access_token_format

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def test_basic_auth_issues_bearer_token(harness: Harness) -> None:
    """§4.4.3: Basic-authenticated request yields a Bearer token, no refresh token, no-store."""
    client = await harness.register("read write", ttl=600)
    response = await harness.token(client)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "read write"
    assert "refresh_token" not in body
    assert is_access_token_format(body["access_token"])
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_post_auth_issues_token(harness: Harness) -> None:
    """§2.3.1: client_secret_post is accepted."""
    client = await harness.register()
    data = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.secret,
    }
    response = await harness.http.post("/oauth2/token", data=data)
    assert response.status_code == 200


async def test_token_stored_only_as_hash(harness: Harness) -> None:
    """§10.3: the store never sees the raw token."""
    client = await harness.register()
    token = await harness.issue(client)
    stored = list(harness.store._tokens.values())
    assert len(stored) == 1
    assert token not in repr(stored)


async def test_tokens_are_unique_and_high_entropy(harness: Harness) -> None:
    """§10.10: 256 random bits per token."""
    client = await harness.register()
    tokens = {await harness.issue(client) for _ in range(50)}
    assert len(tokens) == 50


async def test_scope_subset_granted(harness: Harness) -> None:
    """§3.3: a requested subset is granted as requested."""
    client = await harness.register("read write admin")
    response = await harness.token(client, scope="read")
    assert response.json()["scope"] == "read"


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        pytest.param("delete", "invalid_scope", id="rfc6749-5.2-scope-not-allowed"),
        pytest.param('read "bad"', "invalid_scope", id="rfc6749-3.3-malformed-scope"),
        pytest.param("read  write", "invalid_scope", id="rfc6749-3.3-double-space"),
    ],
)
async def test_bad_scope_rejected(harness: Harness, scope: str, error: str) -> None:
    """§5.2: invalid_scope for scopes outside the client's or malformed ones."""
    client = await harness.register("read write")
    response = await harness.token(client, scope=scope)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_resource_selects_audience(harness: Harness) -> None:
    """RFC 8707: `resource` picks the audience among the allowed ones."""
    client = await harness.register(audiences=("https://a.test", "https://b.test"))
    rs = await harness.register(introspect=True, audiences=("https://b.test",))
    token = await harness.issue(client, resource="https://b.test")
    body = (await harness.introspect(rs, token)).json()
    assert body["active"] is True
    assert body["aud"] == "https://b.test"


async def test_repeated_resource_allowed(harness: Harness) -> None:
    """RFC 8707 §2: `resource` may appear more than once."""
    client = await harness.register(audiences=("https://a.test", "https://b.test"))
    response = await harness.http.post(
        "/oauth2/token",
        content=b"grant_type=client_credentials&resource=https%3A%2F%2Fa.test&resource=https%3A%2F%2Fb.test",
        headers={**client.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param("https://other.test", id="rfc8707-not-allowed"),
        pytest.param("relative/path", id="rfc8707-not-absolute"),
        pytest.param("https://a.test#frag", id="rfc8707-fragment"),
    ],
)
async def test_bad_resource_is_invalid_target(harness: Harness, resource: str) -> None:
    """RFC 8707 §2: invalid_target for disallowed or malformed resources."""
    client = await harness.register(audiences=("https://a.test",))
    response = await harness.token(client, resource=resource)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param(b"", 400, "invalid_request", id="rfc6749-5.2-missing-grant_type"),
        pytest.param(
            b"grant_type=password", 400, "unsupported_grant_type", id="rfc6749-5.2-password"
        ),
        pytest.param(
            b"grant_type=authorization_code", 400, "unsupported_grant_type", id="rfc6749-5.2-code"
        ),
        pytest.param(
            b"grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
            id="rfc6749-3.2-duplicate-param",
        ),
        pytest.param(
            b"grant_type=client_credentials&scope=%FF",
            400,
            "invalid_request",
            id="non-utf8-percent-encoded",
        ),
        pytest.param(
            "grant_type=client_credentials&scope=é".encode(),
            400,
            "invalid_request",
            id="raw-non-ascii-body",
        ),
    ],
)
async def test_malformed_requests(harness: Harness, body: bytes, status: int, error: str) -> None:
    """§5.2: malformed token requests get the spec error code."""
    client = await harness.register()
    response = await harness.http.post(
        "/oauth2/token",
        content=body,
        headers={**client.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_empty_parameter_treated_as_omitted(harness: Harness) -> None:
    """§3.1: a parameter without a value is as if omitted (here: scope defaults to all)."""
    client = await harness.register("read write")
    response = await harness.token(client, scope="")
    assert response.json()["scope"] == "read write"


async def test_wrong_content_type(harness: Harness) -> None:
    """Only application/x-www-form-urlencoded bodies are accepted (415)."""
    client = await harness.register()
    response = await harness.http.post(
        "/oauth2/token", json={"grant_type": "client_credentials"}, headers=client.basic()
    )
    assert response.status_code == 415
    assert response.json()["error"] == "invalid_request"


async def test_oversized_body(harness: Harness) -> None:
    """Bodies beyond the limit get 413, not a 500 or a hang."""
    client = await harness.register()
    response = await harness.token(client, scope="a" * 20_000)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_wrong_method(harness: Harness) -> None:
    """GET on the token endpoint is 405 with Allow."""
    response = await harness.http.get("/oauth2/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_no_credentials(harness: Harness) -> None:
    """§5.2: no client authentication → 401 invalid_client with a Basic challenge."""
    response = await harness.http.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "case", ["wrong-secret", "unknown-client", "disabled-client", "bearer-scheme", "garbage-basic"]
)
async def test_failed_client_authentication(harness: Harness, case: str) -> None:
    """§5.2: every authentication failure looks the same: 401 invalid_client."""
    client = await harness.register()
    headers = client.basic()
    if case == "wrong-secret":
        client.secret = client.secret[:-1] + ("0" if client.secret[-1] != "0" else "1")
        headers = client.basic()
    elif case == "unknown-client":
        raw = base64.b64encode(f"tgc_nobody:{client.secret}".encode()).decode()
        headers = {"Authorization": f"Basic {raw}"}
    elif case == "disabled-client":
        await harness.store.disable_client(client.client_id, 0)
    elif case == "bearer-scheme":
        headers = {"Authorization": "Bearer abc"}
    else:
        headers = {"Authorization": "Basic !!!not-base64"}
    response = await harness.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


async def test_two_auth_methods_rejected(harness: Harness) -> None:
    """§2.3: a client MUST NOT use more than one authentication method per request."""
    client = await harness.register()
    data = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.secret,
    }
    response = await harness.http.post("/oauth2/token", data=data, headers=client.basic())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_basic_credentials_are_form_decoded(harness: Harness) -> None:
    """§2.3.1: id and secret are form-urlencoded before base64 (odd characters survive)."""
    client = await harness.register(client_id="svc:a b/ü+%", secret="s3cr:et with spaces+ü")
    response = await harness.token(client)
    assert response.status_code == 200, response.text


async def test_repeated_authorization_header(harness: Harness) -> None:
    """Two Authorization headers are ambiguous: invalid_request."""
    client = await harness.register()
    header = client.basic()["Authorization"]
    response = await harness.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=[("Authorization", header), ("Authorization", header)],
    )
    assert response.status_code == 400


async def test_cached_authentication_cannot_outlive_a_disable(harness: Harness) -> None:
    """A client disabled after authenticating (auth cached) gets no new token."""
    client = await harness.register()
    assert (await harness.token(client)).status_code == 200  # caches the authentication
    await harness.store.disable_client(client.client_id, 0)  # e.g. the CLI, another process
    response = await harness.token(client)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert all(t.revoked_at is not None for t in harness.store._tokens.values())


async def test_cached_authentication_cannot_outlive_a_rotation(harness: Harness) -> None:
    """After a secret rotation the old secret stops issuing tokens, cache or not."""
    client = await harness.register()
    assert (await harness.token(client)).status_code == 200
    await harness.store.set_client_secret(client.client_id, "0" * 64, 0)
    assert (await harness.token(client)).status_code == 401
