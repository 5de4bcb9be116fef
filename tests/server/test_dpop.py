"""DPoP at the token endpoint (RFC 9449 §5, §6.2, §8), in process over a memory store."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dpop import DpopKey
from tokengate.core.credentials import hash_value
from tokengate.server import Settings, create_app
from tokengate.storage.base import StorageUnavailable
from tokengate.storage.memory import MemoryStore

from .conftest import ISSUER, FakeClock, Harness, Registered

pytestmark = pytest.mark.anyio
TOKEN_URL = ISSUER + "/oauth2/token"
KEY = DpopKey()


@asynccontextmanager
async def app_over(
    store: MemoryStore, clock: FakeClock, *, nonce: bool = False, kek: bytes | None = None
) -> AsyncIterator[Harness]:
    """An app (DPoP nonces on or off, a key-encryption key or none) over `store`, via httpx."""
    settings = Settings(issuer=ISSUER, dpop_nonce=nonce, key_encryption_key=kek)
    app = create_app(settings, store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Harness(store, clock, http)
    await app.shutdown()


@pytest.fixture
async def nonce_harness() -> AsyncIterator[Harness]:
    """A fresh app over a memory store, with DPoP nonces required."""
    async with app_over(MemoryStore(), FakeClock(), nonce=True) as harness:
        yield harness


async def dpop_token(
    harness: Harness, who: Registered, proof: str | None, **form: str
) -> httpx.Response:
    """A token request with `proof` in the DPoP header (none when None)."""
    headers = who.basic() | ({} if proof is None else {"DPoP": proof})
    data = {"grant_type": "client_credentials", **form}
    return await harness.http.post("/oauth2/token", data=data, headers=headers)


def refused(response: httpx.Response, error: str = "invalid_dpop_proof") -> str:
    """The error_description of a 400 with `error`."""
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    return str(response.json().get("error_description", ""))


async def test_proof_binds_the_token(harness: Harness) -> None:
    """A valid proof gets `token_type: DPoP`; the stored record carries the key's thumbprint."""
    client = await harness.register()
    response = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert response.headers["cache-control"] == "no-store"
    stored = await harness.store.get_token(hash_value(body["access_token"]))
    assert stored is not None
    assert stored.jkt == KEY.jkt


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
async def test_every_algorithm_binds(harness: Harness, alg: str) -> None:
    """Each advertised algorithm obtains a DPoP token bound to its key."""
    client, key = await harness.register(), DpopKey(alg)
    response = await dpop_token(harness, client, key.proof(TOKEN_URL, now=harness.clock()))
    assert response.status_code == 200, response.text
    stored = await harness.store.get_token(hash_value(response.json()["access_token"]))
    assert stored is not None
    assert stored.jkt == key.jkt


async def test_introspection_shows_the_binding(harness: Harness) -> None:
    """RFC 9449 §6.2: `cnf.jkt` and `token_type: DPoP` for a bound token; Bearer stays Bearer."""
    client, rs = await harness.register(), await harness.register(introspect=True)
    response = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
    bound = (await harness.introspect(rs, response.json()["access_token"])).json()
    assert bound["token_type"] == "DPoP"
    assert bound["cnf"] == {"jkt": KEY.jkt}
    bearer = (await harness.introspect(rs, await harness.issue(client))).json()
    assert bearer["token_type"] == "Bearer"
    assert "cnf" not in bearer


async def test_revoked_bound_token_is_inactive(harness: Harness) -> None:
    """A bound token is revoked like any other; the cached introspection answer goes with it."""
    client, rs = await harness.register(), await harness.register(introspect=True)
    response = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
    token = response.json()["access_token"]
    assert (await harness.introspect(rs, token)).json()["active"] is True
    revoked = await harness.http.post(
        "/oauth2/revoke", data={"token": token}, headers=client.basic()
    )
    assert revoked.status_code == 200
    assert (await harness.introspect(rs, token)).json() == {"active": False}


async def test_replayed_proof_refused(harness: Harness) -> None:
    """RFC 9449 §11.1: a proof's jti is accepted once."""
    client = await harness.register()
    proof = KEY.proof(TOKEN_URL, now=harness.clock())
    assert (await dpop_token(harness, client, proof)).status_code == 200
    assert "already used" in refused(await dpop_token(harness, client, proof))


async def test_refused_request_does_not_spend_the_proof(harness: Harness) -> None:
    """A request refused for its grant leaves the proof's jti unspent."""
    client = await harness.register()
    proof = KEY.proof(TOKEN_URL, now=harness.clock())
    assert (await dpop_token(harness, client, proof, scope="admin")).status_code == 400
    assert (await dpop_token(harness, client, proof)).status_code == 200


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"htu": "http://testserver/oauth2/token"}, "htu", id="htu-request-url"),
        pytest.param({"htu": ISSUER + "/oauth2/introspect"}, "htu", id="htu-other-endpoint"),
        pytest.param({"htm": "GET"}, "htm", id="htm-GET"),
        pytest.param({"iat": 0}, "too old", id="iat-stale"),
        pytest.param({"jti": None}, "jti", id="jti-missing"),
    ],
)
async def test_bad_claims_refused(harness: Harness, changes: dict[str, Any], reason: str) -> None:
    """`htu` is the token endpoint as the issuer advertises it; `htm`, `iat` and `jti` checked."""
    client = await harness.register()
    proof = KEY.proof(TOKEN_URL, now=harness.clock(), **changes)
    assert reason in refused(await dpop_token(harness, client, proof))


@pytest.mark.parametrize(
    "proof",
    [
        pytest.param("", id="empty"),
        pytest.param("a.b.c", id="garbage"),
        pytest.param("x" * 9000, id="oversized"),
        pytest.param(KEY.proof(TOKEN_URL) + ", " + KEY.proof(TOKEN_URL), id="two-joined"),
        pytest.param("eyJhbGciOiJub25lIn0.e30.", id="alg-none"),
    ],
)
async def test_malformed_proofs_refused(harness: Harness, proof: str) -> None:
    """Malformed proofs are `invalid_dpop_proof` (400), never a 500."""
    refused(await dpop_token(harness, await harness.register(), proof))


async def test_two_dpop_headers_refused(harness: Harness) -> None:
    """RFC 9449 §4.3 step 1: exactly one DPoP header."""
    client = await harness.register()
    proof = KEY.proof(TOKEN_URL, now=harness.clock())
    headers = [*client.basic().items(), ("DPoP", proof), ("DPoP", proof)]
    response = await harness.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert "more than one" in refused(response)


async def test_dpop_bound_client_needs_a_proof(harness: Harness) -> None:
    """RFC 9449 §5.2 `dpop_bound_access_tokens`: a request without a proof is refused."""
    client = await harness.register()
    bound = dataclasses.replace(client.client, dpop_bound_access_tokens=True)
    await harness.store.update_client(bound, int(harness.clock()))
    assert "must send a DPoP proof" in refused(await dpop_token(harness, client, None))
    proof = KEY.proof(TOKEN_URL, now=harness.clock())
    assert (await dpop_token(harness, client, proof)).json()["token_type"] == "DPoP"


async def test_metadata_lists_dpop_algorithms(harness: Harness) -> None:
    """RFC 9449 §5.1: `dpop_signing_alg_values_supported`, asymmetric only."""
    metadata = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


# -- server nonces (RFC 9449 §8) -----------------------------------------------------------------


async def test_nonce_required_then_accepted(nonce_harness: Harness) -> None:
    """Without a nonce: `use_dpop_nonce` and a `DPoP-Nonce`; with it: a token and a fresh one."""
    harness = nonce_harness
    client = await harness.register()
    first = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
    refused(first, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    proof = KEY.proof(TOKEN_URL, now=harness.clock(), nonce=nonce)
    second = await dpop_token(harness, client, proof)
    assert second.status_code == 200
    assert second.json()["token_type"] == "DPoP"
    assert second.headers["dpop-nonce"]


@pytest.mark.parametrize(
    ("nonce", "later"),
    [
        pytest.param("forged-nonce", 0, id="forged"),
        pytest.param(None, 200, id="stale"),
    ],
)
async def test_bad_nonce_refused(nonce_harness: Harness, nonce: str | None, later: int) -> None:
    """A nonce we never issued, or one from windows ago, is `use_dpop_nonce` again."""
    harness = nonce_harness
    client = await harness.register()
    issued = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
    harness.clock.now += later
    value = nonce or issued.headers["dpop-nonce"]
    response = await dpop_token(
        harness, client, KEY.proof(TOKEN_URL, now=harness.clock(), nonce=value)
    )
    refused(response, "use_dpop_nonce")
    if later:  # a new window: a new nonce
        assert response.headers["dpop-nonce"] != issued.headers["dpop-nonce"]


async def test_replicas_accept_each_others_nonces() -> None:
    """Two apps over one store share the nonce key: a nonce from one works at the other."""
    store, clock = MemoryStore(), FakeClock()
    async with app_over(store, clock, nonce=True) as one, app_over(store, clock, nonce=True) as two:
        client = await one.register()
        first = await dpop_token(one, client, KEY.proof(TOKEN_URL, now=clock()))
        nonce = first.headers["dpop-nonce"]
        second = await dpop_token(two, client, KEY.proof(TOKEN_URL, now=clock(), nonce=nonce))
        assert second.status_code == 200, second.text


async def test_with_a_kek_the_nonce_key_is_derived_not_stored() -> None:
    """With a key-encryption key (which every replica must share), replicas accept each other's
    nonces and no nonce key is written to the store: a database dump forges no nonce. (Another
    KEK derives another key: `tests/core/test_dpop_nonce.py`.)"""
    store, clock, kek = MemoryStore(), FakeClock(), b"k" * 32
    one_ctx = app_over(store, clock, nonce=True, kek=kek)
    async with one_ctx as one, app_over(store, clock, nonce=True, kek=kek) as two:
        client = await one.register()
        first = await dpop_token(one, client, KEY.proof(TOKEN_URL, now=clock()))
        nonce = first.headers["dpop-nonce"]
        second = await dpop_token(two, client, KEY.proof(TOKEN_URL, now=clock(), nonce=nonce))
        assert second.status_code == 200, second.text
    assert "dpop_nonce" not in store._secrets


async def test_invalid_proof_answer_carries_a_nonce(nonce_harness: Harness) -> None:
    """Any DPoP refusal hands out the current nonce, so the retry can succeed."""
    client = await nonce_harness.register()
    response = await dpop_token(nonce_harness, client, "a.b.c")
    refused(response)
    assert response.headers["dpop-nonce"]


async def test_bearer_answers_carry_no_nonce(nonce_harness: Harness) -> None:
    """A request without DPoP is served as before: Bearer, no `DPoP-Nonce`."""
    response = await nonce_harness.token(await nonce_harness.register())
    assert response.json()["token_type"] == "Bearer"
    assert "dpop-nonce" not in response.headers


class NoSecrets(MemoryStore):
    """A store whose shared-secret table is unreachable."""

    async def shared_secret(self, name: str, candidate: str, at: int) -> str:
        raise StorageUnavailable("down")


async def test_nonce_key_outage_fails_closed() -> None:
    """Without the shared nonce key no DPoP token is issued: 503 + Retry-After, not a pass."""
    store = NoSecrets()
    async with app_over(store, FakeClock(), nonce=True) as harness:
        client = await harness.register()
        response = await dpop_token(harness, client, KEY.proof(TOKEN_URL, now=harness.clock()))
        assert response.status_code == 503
        assert "retry-after" in response.headers


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.dictionaries(
        st.sampled_from(["htm", "htu", "iat", "jti", "nonce"]), JSON, max_size=2
    ),
    cut=st.integers(0, 2),
)
async def test_fuzzed_proofs_get_documented_answers(
    harness: Harness, changes: dict[str, Any], cut: int
) -> None:
    """A valid grant with any proof variant is a DPoP token or `invalid_dpop_proof`, never else."""
    client = await harness.register()
    proof = KEY.proof(TOKEN_URL, now=harness.clock(), **changes)
    response = await dpop_token(harness, client, proof[: len(proof) - cut])
    if response.status_code == 200:
        assert response.json()["token_type"] == "DPoP"
    else:
        refused(response)
