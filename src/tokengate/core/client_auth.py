"""Client authentication at the token, introspection and revocation endpoints.

RFC 6749 §2.3.1: `client_secret_basic` (MUST) and `client_secret_post`; the id and secret are
form-urlencoded before Basic's base64. §2.3: exactly one method per request. RFC 7523 §2.2
`private_key_jwt` (`client_assertion_type` + `client_assertion` in the body) is parsed here
and verified by `client_assertion`; a client registered for it has no usable secret, and a
secret client cannot use an assertion.

During a rotation's grace a client has two secrets (`Client.previous_secret_at`); both are
compared, always, so the time taken does not tell which one matched or whether one exists.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_plus

from tokengate.core import client_assertion
from tokengate.core.challenge import basic_challenge
from tokengate.core.credentials import verify_secret
from tokengate.core.decoys import DECOY_CLIENT
from tokengate.core.errors import InvalidClient, InvalidRequest
from tokengate.core.models import Client

BASIC = "client_secret_basic"
POST = "client_secret_post"
MAX_CREDENTIAL_LENGTH = 512


@dataclass(frozen=True, slots=True)
class PresentedCredentials:
    """What the request claims: a client id, a secret and the method used."""

    client_id: str
    client_secret: str
    method: str


@dataclass(frozen=True, slots=True)
class PresentedAssertion:
    """RFC 7521 §4.2: a client assertion, and the client it claims to be (its unverified
    `sub`)."""

    client_id: str
    assertion: str
    method: str = client_assertion.METHOD


def invalid_client(realm: str, description: str = "client authentication failed") -> InvalidClient:
    """RFC 6749 §5.2 `invalid_client` with a Basic challenge."""
    return InvalidClient(description, headers={"WWW-Authenticate": basic_challenge(realm)})


def _parse_basic(header: str, realm: str) -> PresentedCredentials:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client(realm, "unsupported authentication scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise invalid_client(realm, "malformed Basic credentials") from exc
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise invalid_client(realm, "malformed Basic credentials")
    return PresentedCredentials(unquote_plus(raw_id), unquote_plus(raw_secret), BASIC)


def _parse_assertion(
    authorization: str | None, form: dict[str, list[str]], realm: str
) -> PresentedAssertion:
    """RFC 7521 §4.2 parameters; a second method in the same request is §5.2's invalid_request."""
    if authorization is not None or "client_secret" in form:
        raise InvalidRequest("use exactly one client authentication method")
    kind, value = form.get("client_assertion_type"), form.get("client_assertion")
    if kind is None or value is None:
        raise invalid_client(realm, "client_assertion and client_assertion_type go together")
    if kind[0] != client_assertion.ASSERTION_TYPE:
        raise invalid_client(realm, "unsupported client_assertion_type")
    try:
        client_id = client_assertion.claimed_client_id(value[0])
    except client_assertion.AssertionRefused as exc:
        raise invalid_client(realm, str(exc)) from None
    body_id = form.get("client_id")
    if (body_id is not None and body_id[0] != client_id) or len(client_id) > MAX_CREDENTIAL_LENGTH:
        raise invalid_client(realm, "client_id does not match the assertion's sub")
    return PresentedAssertion(client_id, value[0])


def presented_credentials(
    authorization: str | None, form: dict[str, list[str]], realm: str
) -> PresentedCredentials | PresentedAssertion:
    """Extract exactly one set of client credentials from the header or the body."""
    if "client_assertion" in form or "client_assertion_type" in form:
        return _parse_assertion(authorization, form, realm)
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    if authorization is not None:
        if body_secret is not None:
            raise InvalidRequest("use exactly one client authentication method")
        creds = _parse_basic(authorization, realm)
        if body_id is not None and body_id[0] != creds.client_id:
            raise InvalidRequest("client_id in the body does not match the Basic credentials")
    elif body_id is not None and body_secret is not None:
        creds = PresentedCredentials(body_id[0], body_secret[0], POST)
    else:
        raise invalid_client(realm, "client authentication required")
    if (
        len(creds.client_id) > MAX_CREDENTIAL_LENGTH
        or len(creds.client_secret) > MAX_CREDENTIAL_LENGTH
    ):
        raise invalid_client(realm)
    return creds


@dataclass(frozen=True, slots=True)
class Authenticated:
    """An authenticated client, which of its secrets matched, and until when that one works."""

    client: Client
    secret_hash: str
    valid_until: float | None = None  # the previous secret's end of grace; None: the current


def authenticate(creds: PresentedCredentials, client: Client | None, realm: str) -> Client:
    """Check the current secret in constant time; unknown, disabled and wrong all look alike."""
    return authenticate_at(creds, client, realm, now=None).client


def authenticate_at(
    creds: PresentedCredentials, client: Client | None, realm: str, now: float | None
) -> Authenticated:
    """Like `authenticate`, also accepting the previous secret while its grace lasts at `now`
    (None: never)."""
    # An unknown client is checked as the decoy: the same steps, and time, as a wrong secret.
    checked = client if client is not None else DECOY_CLIENT
    previous = checked.previous_secret_at(now) if now is not None else None
    current_ok = verify_secret(creds.client_secret, checked.secret_hash)
    previous_ok = verify_secret(creds.client_secret, previous)
    if client is None or checked.disabled or not (current_ok or previous_ok):
        raise invalid_client(realm)
    if client.auth_method == client_assertion.METHOD:  # its secret was never shown to anyone
        raise invalid_client(realm)
    if current_ok:
        return Authenticated(client, client.secret_hash)
    assert previous is not None  # previous_ok implies it
    return Authenticated(client, previous, client.previous_secret_expires_at)


def check_assertion_client(client: Client | None, realm: str) -> Client:
    """The client an assertion names must exist, be enabled and be registered for it."""
    if client is None or client.disabled or client.auth_method != client_assertion.METHOD:
        raise invalid_client(realm)
    return client
