"""DPoP-bound tokens at the gateway (RFC 9449 §7): the proof checked for the URL the client
called (the gateway's own scheme and Host), the token and proof passed on to the upstream."""

from __future__ import annotations

import pytest

from tests.gateway.support import echo, running, values
from tokengate.gateway import build_policy
from tokengate.resource.runtime.validator import Validator
from tokengate.resource.testing import DPoPKey, static_validator

pytestmark = pytest.mark.anyio
KEY = DPoPKey()
BOUND = "tgat_bound"
URL = "http://gw.test/auth-api/hello"


def _validator() -> Validator:
    return static_validator({BOUND: KEY.bound(scope="read", sub="alice", client_id="app")})


async def test_a_bound_token_with_its_proof_reaches_the_upstream() -> None:
    """200; the upstream gets the identity, the DPoP authorization and the proof, as sent."""
    proof = KEY.proof("GET", URL, token=BOUND)
    headers = {"Authorization": f"DPoP {BOUND}", "DPoP": proof}
    async with running(echo, _validator(), policy=build_policy(["/auth-api/**"])) as gw:
        response = await gw.http.get("/auth-api/hello", headers=headers)
        replayed = await gw.http.get("/auth-api/hello", headers=headers)
        as_bearer = await gw.http.get(
            "/auth-api/hello", headers={"Authorization": f"Bearer {BOUND}"}
        )
    assert response.status_code == 200, response.text
    assert values(response, "x-auth-subject") == ["alice"]
    assert values(response, "authorization") == [f"DPoP {BOUND}"]
    assert values(response, "dpop") == [proof]
    assert replayed.status_code == 401
    assert replayed.headers["www-authenticate"].startswith(
        'DPoP realm="tokengate", error="invalid_dpop_proof"'
    )
    assert as_bearer.status_code == 401
    assert 'error="invalid_token"' in as_bearer.headers["www-authenticate"]


async def test_a_proof_for_the_upstream_url_is_refused() -> None:
    """The proof names the URL the client called, not where the gateway forwards it."""
    proof = KEY.proof("GET", "http://upstream.test:8000/auth-api/hello", token=BOUND)
    headers = {"Authorization": f"DPoP {BOUND}", "DPoP": proof}
    async with running(echo, _validator(), policy=build_policy(["/auth-api/**"])) as gw:
        response = await gw.http.get("/auth-api/hello", headers=headers)
    assert response.status_code == 401
