"""The resource server's side of RFC 9701: it asks for signed answers and accepts nothing
else, verifying them with the issuer's JWKS (discovered, cached, refetched on unknown kid)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from joserfc.jwk import import_key

from tokengate.core import introspection_jwt, key_sealing, signing_keys
from tokengate.core.signing_keys import SigningKey
from tokengate.resource.protocol.errors import DiscoveryError, IntrospectionUnavailable
from tokengate.resource.protocol.rfc7662 import ClientCredentials, HttpRequest, HttpResponse
from tokengate.resource.runtime import signed as signed_module
from tokengate.resource.runtime.client import IntrospectionClient
from tokengate.resource.runtime.settings import ValidatorSettings
from tokengate.resource.runtime.signed import SignedResponses
from tokengate.resource.runtime.stats import Stats
from tokengate.resource.testing import HandlerTransport

pytestmark = pytest.mark.anyio

ISSUER = "https://as.example"
RS = "tgc_rs"
KEK = key_sealing.parse_kek(key_sealing.new_kek())
JSON = "application/json"


@dataclass
class SigningServer:
    """A fake authorization server that signs its introspection answers."""

    keys: list[SigningKey] = field(default_factory=lambda: [key_sealing.generate(KEK, 0)])
    published: list[SigningKey] | None = None  # what the JWKS shows (default: `keys`)
    answer: dict[str, Any] = field(default_factory=lambda: {"active": True, "scope": "read"})
    issuer: str = ISSUER
    audience: str = RS
    content_type: str = introspection_jwt.MEDIA_TYPE
    jwks_fetches: int = 0
    seen_accept: list[str] = field(default_factory=list)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/.well-known/oauth-authorization-server"):
            meta = {"issuer": ISSUER, "introspection_endpoint": ISSUER + "/i"}
            meta["jwks_uri"] = ISSUER + "/jwks"
            return HttpResponse(200, orjson.dumps(meta), None, JSON)
        if request.url.endswith("/jwks"):
            self.jwks_fetches += 1
            document = signing_keys.jwks_document(self.published or self.keys, 0)
            return HttpResponse(200, orjson.dumps(document), None, "application/jwk-set+json")
        self.seen_accept.append(dict(request.headers)["accept"])
        return HttpResponse(200, self.sign().encode(), None, self.content_type)

    def sign(self) -> str:
        key = self.keys[-1]
        private = import_key(json.loads(key_sealing.unseal(KEK, key.kid, key.sealed_private)))
        claims = introspection_jwt.response_claims(
            self.answer, self.issuer, self.audience, int(time.time())
        )
        return introspection_jwt.sign_response(claims, private, key.kid, key.alg)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(server: SigningServer, clock: Clock | None = None) -> IntrospectionClient:
    signed = SignedResponses(ISSUER, RS, monotonic=clock or time.monotonic)
    return IntrospectionClient(
        HandlerTransport(server), ClientCredentials(RS, "secret"), stats=Stats(),
        issuer=ISSUER, signed=signed,
    )  # fmt: skip


async def test_accepts_a_signed_answer() -> None:
    """§4: the Accept header asks for the JWT; the verified claims come back."""
    server = SigningServer()
    claims = await _client(server).introspect("tok")
    assert claims.active
    assert claims.scopes == {"read"}
    assert server.seen_accept == [introspection_jwt.MEDIA_TYPE]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"content_type": JSON}, id="unsigned-json"),
        pytest.param({"issuer": "https://evil.example"}, id="wrong-iss"),
        pytest.param({"audience": "another-rs"}, id="wrong-aud"),
    ],
)
async def test_refuses_untrusted_answers(change: dict[str, Any]) -> None:
    """Fail closed: an unsigned answer, or one for another issuer or audience, is no answer."""
    server = SigningServer(**change)
    with pytest.raises(IntrospectionUnavailable):
        await _client(server).introspect("tok")


async def test_refuses_a_forged_signature() -> None:
    """An answer signed by a key the issuer does not publish under that kid is refused."""
    real = key_sealing.generate(KEK, 0, alg="ES256")
    forger = key_sealing.generate(KEK, 0, alg="ES256")
    # The forger's private key, sealed under the real key's kid: it signs as `real.kid`.
    stolen_name = key_sealing.unseal(KEK, forger.kid, forger.sealed_private)
    sealed = key_sealing.seal(KEK, real.kid, stolen_name)
    forged = SigningKey(real.kid, "ES256", real.public_jwk, sealed, 0, 0)
    server = SigningServer(keys=[forged], published=[real])
    with pytest.raises(IntrospectionUnavailable, match="signature"):
        await _client(server).introspect("tok")


async def test_unknown_kid_refetches_once_per_interval() -> None:
    """A rotated key unknown to the cache triggers one refetch; more are rate-limited."""
    clock = Clock()
    server = SigningServer()
    client = _client(server, clock)
    await client.introspect("tok")
    assert server.jwks_fetches == 1
    clock.now += signed_module.REFRESH_INTERVAL + 1
    server.keys.append(key_sealing.generate(KEK, 0, alg="ES256"))
    assert (await client.introspect("tok")).active
    assert server.jwks_fetches == 2
    server.published = [server.keys[0]]  # a kid the issuer never published
    server.keys.append(key_sealing.generate(KEK, 0))
    with pytest.raises(IntrospectionUnavailable, match="unknown key"):
        await client.introspect("tok")
    assert server.jwks_fetches == 2  # within the interval: not fetched again


async def test_jwks_cached_between_answers() -> None:
    """The JWKS is fetched once for many answers."""
    server = SigningServer()
    client = _client(server)
    for _ in range(5):
        await client.introspect("tok")
    assert server.jwks_fetches == 1


async def test_metadata_without_jwks_uri() -> None:
    """An issuer that does not sign (no jwks_uri) cannot be used with the option on."""

    def handler(request: HttpRequest) -> HttpResponse:
        meta = {"issuer": ISSUER, "introspection_endpoint": ISSUER + "/i"}
        return HttpResponse(200, orjson.dumps(meta), None, JSON)

    signed = SignedResponses(ISSUER, RS)
    client = IntrospectionClient(
        HandlerTransport(handler), ClientCredentials(RS, "s"), stats=Stats(),
        issuer=ISSUER, signed=signed,
    )  # fmt: skip
    with pytest.raises(DiscoveryError, match="jwks_uri"):
        await client.introspect("tok")


def test_settings_need_an_issuer() -> None:
    """The expected `iss` must be known: an introspection URL alone is refused."""
    with pytest.raises(ValueError, match="issuer"):
        ValidatorSettings("rs", "s", introspection_url=ISSUER + "/i", signed_introspection=True)
