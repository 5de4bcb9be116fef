"""Client authentication (RFC 6749 §2.3, §2.3.1; invalid_client per §5.2)."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest

from tests.core.records import REALM, RFC_BASIC, RFC_CLIENT_ID, RFC_SECRET, make_client
from tokengate.core.challenge import basic_challenge
from tokengate.core.client_auth import (
    BASIC,
    MAX_CREDENTIAL_LENGTH,
    POST,
    PresentedCredentials,
    authenticate,
    authenticate_at,
    presented_credentials,
)
from tokengate.core.credentials import hash_value
from tokengate.core.errors import InvalidClient, InvalidRequest
from tokengate.core.forms import parse_form
from tokengate.core.models import Client


def basic(client_id: str, secret: str) -> str:
    """§2.3.1: form-urlencode id and secret, then Basic's base64."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def test_rfc_example_basic_header() -> None:
    """RFC 6749 §2.3.1/§4.4.2: `Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW` is s6BhdRkqt3/gX1fBat3bV."""
    form = parse_form(b"grant_type=client_credentials")
    creds = presented_credentials(RFC_BASIC, form, REALM)
    assert creds == PresentedCredentials(RFC_CLIENT_ID, RFC_SECRET, BASIC)


@pytest.mark.parametrize(
    ("header", "client_id", "secret"),
    [
        pytest.param(
            "Basic dGdjX2ElM0FiJTJCYytkOmdYMWYrQmF0MyUyQmJWJTNBJUMzJUE5JUUyJTgyJUFD",
            "tgc_a:b+c d",
            "gX1f Bat3+bV:é€",
            id="rfc6749-2.3.1-form-encoded-colon-plus-space-non-ascii",
        ),
        pytest.param(
            "Basic " + base64.b64encode(b"id:pa:ss").decode(),
            "id",
            "pa:ss",
            id="rfc7617-colon-in-password",
        ),
        pytest.param(
            "Basic " + base64.b64encode(b"a+b:c+d").decode(),
            "a b",
            "c d",
            id="rfc6749-2.3.1-plus-decodes-to-space",
        ),
        pytest.param(
            "basic " + RFC_BASIC.split()[1], RFC_CLIENT_ID, RFC_SECRET, id="scheme-case-insensitive"
        ),
    ],
)
def test_basic_decoding(header: str, client_id: str, secret: str) -> None:
    """The Basic pair is base64-decoded, split at the first ':', then form-decoded."""
    creds = presented_credentials(header, {}, REALM)
    assert (creds.client_id, creds.client_secret, creds.method) == (client_id, secret, BASIC)


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        pytest.param("tgc_a:b+c d", "gX1f Bat3+bV:é€", id="special"),
        pytest.param("%41", "100%", id="percent-signs"),
        pytest.param("日本", "pässwörd", id="non-ascii"),
    ],
)
def test_basic_round_trip(client_id: str, secret: str) -> None:
    """Whatever the id and secret, §2.3.1 encoding decodes back to them."""
    creds = presented_credentials(basic(client_id, secret), {}, REALM)
    assert (creds.client_id, creds.client_secret) == (client_id, secret)


def test_client_secret_post() -> None:
    """§2.3.1: credentials in the body are `client_secret_post`."""
    form = parse_form(
        b"grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV"
    )
    assert presented_credentials(None, form, REALM) == PresentedCredentials(
        RFC_CLIENT_ID, RFC_SECRET, POST
    )


def test_basic_with_matching_body_client_id() -> None:
    """A body `client_id` equal to the Basic one is not a second method."""
    creds = presented_credentials(RFC_BASIC, {"client_id": [RFC_CLIENT_ID]}, REALM)
    assert creds.method == BASIC


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"client_secret": [RFC_SECRET]}, id="rfc6749-2.3-two-methods"),
        pytest.param(
            {"client_id": [RFC_CLIENT_ID], "client_secret": [RFC_SECRET]},
            id="rfc6749-2.3-basic-and-post",
        ),
        pytest.param({"client_id": ["someone-else"]}, id="body-client_id-mismatch"),
    ],
)
def test_more_than_one_method_is_invalid_request(form: dict[str, list[str]]) -> None:
    """§2.3: a client MUST NOT use more than one authentication method per request."""
    with pytest.raises(InvalidRequest):
        presented_credentials(RFC_BASIC, form, REALM)


@pytest.mark.parametrize(
    ("header", "form"),
    [
        pytest.param(None, {}, id="rfc6749-5.2-no-credentials"),
        pytest.param(None, {"client_id": [RFC_CLIENT_ID]}, id="body-id-without-secret"),
        pytest.param("Bearer mF_9.B5f-4.1JqM", {}, id="other-scheme"),
        pytest.param("Basic !!!not-base64", {}, id="bad-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), {}, id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff:\xfe").decode(), {}, id="not-utf8"),
        pytest.param("Basic é", {}, id="non-ascii-header"),
        pytest.param(basic("x" * (MAX_CREDENTIAL_LENGTH + 1), "s"), {}, id="id-too-long"),
        pytest.param(basic("x", "s" * (MAX_CREDENTIAL_LENGTH + 1)), {}, id="secret-too-long"),
    ],
)
def test_unusable_credentials_are_invalid_client(
    header: str | None, form: dict[str, list[str]]
) -> None:
    """§5.2: `invalid_client`, 401, with a `WWW-Authenticate: Basic` challenge."""
    with pytest.raises(InvalidClient) as caught:
        presented_credentials(header, form, REALM)
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": basic_challenge(REALM)}


def test_authenticate_accepts_the_right_secret() -> None:
    """The registered secret authenticates its client."""
    client = make_client()
    creds = PresentedCredentials(RFC_CLIENT_ID, RFC_SECRET, BASIC)
    assert authenticate(creds, client, REALM) is client


@pytest.mark.parametrize(
    ("secret", "client"),
    [
        pytest.param("gX1fBat3bW", make_client(), id="wrong-secret"),
        pytest.param(RFC_SECRET, None, id="unknown-client"),
        pytest.param(RFC_SECRET, make_client(disabled=True), id="disabled-client"),
        pytest.param(RFC_SECRET, make_client(secret_hash=hash_value("rotated")), id="rotated"),
    ],
)
def test_authenticate_failures_look_alike(secret: str, client: Client | None) -> None:
    """Unknown, disabled and wrong-secret clients get the same `invalid_client`."""
    creds = PresentedCredentials(RFC_CLIENT_ID, secret, BASIC)
    with pytest.raises(InvalidClient) as caught:
        authenticate(creds, client, REALM)
    assert caught.value.body() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert caught.value.headers == {"WWW-Authenticate": basic_challenge(REALM)}


def test_previous_secret_authenticates_only_within_its_grace() -> None:
    """During a rotation's grace the old secret authenticates, naming the digest it matched
    and the grace end; at the end it is refused like any wrong secret."""
    rotated = make_client(
        secret_hash=hash_value("new-secret"),
        previous_secret_hash=hash_value(RFC_SECRET),
        previous_secret_expires_at=1000,
    )
    creds = PresentedCredentials(RFC_CLIENT_ID, RFC_SECRET, BASIC)
    auth = authenticate_at(creds, rotated, REALM, now=999.5)
    assert (auth.secret_hash, auth.valid_until) == (hash_value(RFC_SECRET), 1000)
    with pytest.raises(InvalidClient):
        authenticate_at(creds, rotated, REALM, now=1000)
    with pytest.raises(InvalidClient):
        authenticate(creds, rotated, REALM)  # no time given: the previous secret never counts
    current = PresentedCredentials(RFC_CLIENT_ID, "new-secret", BASIC)
    assert authenticate_at(current, rotated, REALM, now=5000).valid_until is None
