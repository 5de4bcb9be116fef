"""Fuzzed DPoP presentations (RFC 9449 §4.3, §7) through the ASGI middleware and the decision
service: any mix of schemes, tokens and proofs (good, for something else, replayed, mangled,
`alg` none or HMAC, private `jwk`, oversized) gets a documented answer, and only a bound token
with a fresh proof by its key for this very request gets through."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.fuzzing import FUZZ, challenge_params
from tokengate.asgi.types import Message, Scope
from tokengate.authz import AuthzSettings, create_authz
from tokengate.gateway.settings import build_policy
from tokengate.resource.adapters.asgi import TokenGateMiddleware
from tokengate.resource.testing import DPoPKey, static_validator

KEY, THIEF = DPoPKey(), DPoPKey()
URL = "http://rs.test/auth-api/x"
BOUND, UNBOUND = "bound-token", "plain-token"
TOKENS = {BOUND: KEY.bound(scope="read"), UNBOUND: {"active": True, "scope": "read"}}
DOCUMENTED = {
    400: {"invalid_request"},
    401: {None, "invalid_token", "invalid_dpop_proof"},
    403: {"insufficient_scope"},
}


def _b64(document: dict[str, Any]) -> str:
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forged(header: dict[str, Any]) -> str:
    """A proof whose header is `header` and whose signature is nonsense."""
    claims = {"jti": "x", "htm": "GET", "htu": URL, "iat": 0}
    return f"{_b64(header)}.{_b64(claims)}.c2ln"


def _proofs() -> st.SearchStrategy[str]:
    jwk = KEY.public_jwk
    private = KEY.key.as_dict(private=True)
    fresh = st.builds(
        lambda token, method, url, signer: signer.proof(method, url, token=token),
        st.sampled_from([BOUND, UNBOUND, "other"]),
        st.sampled_from(["GET", "POST", "get"]),
        st.sampled_from([URL, URL + "/y", "https://rs.test/auth-api/x", "http://evil/auth-api/x"]),
        st.sampled_from([KEY, THIEF]),
    )
    forged = st.sampled_from(
        [
            _forged({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
            _forged({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
            _forged({"typ": "jwt", "alg": "ES256", "jwk": jwk}),
            _forged({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            _forged({"typ": "dpop+jwt", "alg": "ES256"}),
            "a" * 9000,
            "...",
            "",
        ]
    )
    mangled = fresh.map(lambda proof: proof[:-3] + "AAA")
    good = st.builds(lambda: KEY.proof("GET", URL, token=BOUND))
    return good | fresh | forged | mangled | st.text(max_size=40)


def _headers() -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    authorization = st.sampled_from(
        [f"DPoP {BOUND}", f"Bearer {BOUND}", f"DPoP {UNBOUND}", f"Bearer {UNBOUND}", "DPoP"]
    ).map(lambda v: (b"authorization", v.encode()))
    custom = st.sampled_from([BOUND, UNBOUND]).map(lambda v: (b"x-access-token", v.encode()))
    proof = _proofs().map(lambda p: (b"dpop", p.encode("utf-8", "replace")))
    return st.lists(authorization | custom | proof, max_size=4)


def _run(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _check(sent: list[Message], headers: list[tuple[bytes, bytes]], reached: bool) -> None:
    status = sent[0]["status"]
    event(f"status={status} proofs={sum(n == b'dpop' for n, _ in headers)}")
    if status == 200:
        assert reached
        proofs = [v for n, v in headers if n == b"dpop"]
        tokens = {v.decode().rpartition(" ")[2] for n, v in headers if n != b"dpop"}
        # A bound token passes only with one proof, and an unbound one only without.
        assert tokens == ({BOUND} if proofs else {UNBOUND})
        assert len(proofs) <= 1
        return
    assert not reached
    assert status in DOCUMENTED, status
    response_headers = dict(sent[0]["headers"])
    params = challenge_params(response_headers[b"www-authenticate"].decode("latin-1"))
    assert params is not None
    assert params.get("error") in DOCUMENTED[status]


@FUZZ
@given(headers=_headers())
def test_the_middleware_answers_only_documented_refusals(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Whatever is presented, a refusal is a documented 400/401, and a pass is a real one."""
    reached: list[bool] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        reached.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = TokenGateMiddleware(app, static_validator(TOKENS))
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/auth-api/x",
        "raw_path": b"/auth-api/x",
        "query_string": b"",
        "headers": [(b"host", b"rs.test"), *headers],
    }
    _check(_run(middleware, scope), headers, bool(reached))


@FUZZ
@given(headers=_headers())
def test_the_decision_service_answers_only_documented_refusals(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """The same presentations asked about by nginx: the same documented answers."""
    service = create_authz(
        AuthzSettings(policy=build_policy(["/auth-api/**"])), static_validator(TOKENS)
    )
    forwarded = [
        (b"x-original-method", b"GET"),
        (b"x-original-uri", b"/auth-api/x"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"rs.test"),
    ]
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/decide",
        "raw_path": b"/decide",
        "query_string": b"",
        "headers": [(b"host", b"authz"), *forwarded, *headers],
    }
    sent = _run(service, scope)
    _check(sent, headers, sent[0]["status"] == 200)
