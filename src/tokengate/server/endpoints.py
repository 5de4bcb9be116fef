"""The authorization server's endpoints: thin pipelines over `tokengate.core`.

Each one is: check media type → read body → parse form → authenticate client → core rule →
store → render. Errors are raised as `OAuthError` and rendered by the app.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from tokengate.asgi.body import BodyReader
from tokengate.asgi.types import Receive
from tokengate.core import (
    client_assertion,
    client_auth,
    introspection,
    introspection_jwt,
    revocation,
    token_endpoint,
)
from tokengate.core.conditional import entity_tag, none_match
from tokengate.core.credentials import hash_value
from tokengate.core.decoys import DECOY_TOKEN
from tokengate.core.errors import InvalidClient, TooManyRequests
from tokengate.core.forms import check_content_type, parse_form
from tokengate.core.metadata import server_metadata, signing_metadata
from tokengate.core.models import AccessToken, Client
from tokengate.core.responses import NO_STORE, Response, json_response
from tokengate.core.signing_keys import JWKS_MAX_AGE
from tokengate.core.wire import EVENTS_PATH, INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from tokengate.server.audit_log import SecurityEvents
from tokengate.server.auth_cache import AuthCache
from tokengate.server.dpop import DpopGate
from tokengate.server.issuance_rate import IssuanceLimiter
from tokengate.server.jwks import JwksResolver
from tokengate.server.metadata_scopes import ScopesSupported
from tokengate.server.metrics import ServerMetrics
from tokengate.server.request_headers import PEER
from tokengate.server.settings import Settings
from tokengate.server.signing import KeyRing
from tokengate.server.throttle import AuthThrottle
from tokengate.server.token_cache import TokenCache
from tokengate.storage.base import StaleClient, Store

Clock = Callable[[], float]
# The metadata's `scopes_supported` changes as clients are created: caches must revalidate
# (RFC 9111 §5.2.2.4 `no-cache`), which a strong ETag makes a 304 without a body.
_REVALIDATE = (b"cache-control", b"no-cache")
# RFC 7662 answers are never cached (`no-store`); `Pragma` is RFC 6749 §5.1's rule for token
# responses only, and an obsolete HTTP/1.0 field (RFC 9111 §5.4), so it is left out here.
_INTROSPECTION_HEADERS = ((b"cache-control", b"no-store"),)
_INACTIVE = json_response(200, introspection.INACTIVE, _INTROSPECTION_HEADERS)
_JWT_HEADERS = (
    (b"content-type", introspection_jwt.MEDIA_TYPE.encode("latin-1")),
    *_INTROSPECTION_HEADERS,
)
# The JWKS changes only at a rotation, which publishes a key long before it signs
# (`core.signing_keys.DEFAULT_PUBLICATION_DELAY` > this max-age).
_JWKS_HEADERS = (
    (b"content-type", b"application/jwk-set+json"),
    (b"cache-control", f"public, max-age={JWKS_MAX_AGE}".encode("latin-1")),
)
# Form parameters that carry credentials: a request with any of them is never served from the
# auth cache (an assertion in particular is verified, and its jti recorded, every time).
_BODY_CREDENTIALS = frozenset(
    ("client_id", "client_secret", "client_assertion", "client_assertion_type")
)


class Endpoints:
    """Endpoint handlers bound to one store and one settings object."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock = time.time,
        metrics: ServerMetrics | None = None,
        *,
        on_revocation: Callable[[], None] = lambda: None,
        cache_trusted: Callable[[], bool] = lambda: False,
        jwks: JwksResolver | None = None,
        keys: KeyRing | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics or ServerMetrics()
        self.on_revocation = on_revocation
        self.auth_cache = AuthCache(is_trusted=cache_trusted)
        self.body = BodyReader(settings.max_body_bytes, settings.body_timeout)
        self.throttle = AuthThrottle(settings.throttle)
        rate = settings.max_token_rate
        self.issuance = None if rate is None else IssuanceLimiter(rate)
        self.token_cache = TokenCache(is_trusted=cache_trusted)
        self.security = SecurityEvents(store, clock, settings.throttle.window_seconds)
        self.jwks = jwks or JwksResolver()
        self.dpop = DpopGate(
            store,
            settings.issuer,
            clock,
            nonces=settings.dpop_nonce,
            kek=settings.key_encryption_key,
        )
        self.keys = keys
        self.scopes_supported = ScopesSupported(store, clock)

    async def _form(self, receive: Receive, headers: dict[str, str]) -> dict[str, list[str]]:
        content_type = headers.get("content-type")
        if content_type is not None:
            check_content_type(content_type)
        body = await self.body.read(receive, headers)
        if content_type is None and body:
            check_content_type(None)
        return parse_form(body)

    async def _client(
        self, headers: dict[str, str], form: dict[str, list[str]], path: str
    ) -> client_auth.Authenticated:
        realm = self.settings.realm
        creds = client_auth.presented_credentials(headers.get("authorization"), form, realm)
        peer = headers.get(PEER, "")
        try:
            self.throttle.check(creds.client_id, peer)
        except TooManyRequests:
            await self.security.throttled(creds.client_id, peer)
            raise
        stored = await self.store.get_client(creds.client_id)
        try:
            if isinstance(creds, client_auth.PresentedAssertion):
                return await self._assertion(creds, stored, path)
            return client_auth.authenticate_at(creds, stored, realm, self.clock())
        except InvalidClient:
            self.throttle.failed(creds.client_id, peer)
            raise

    async def _assertion(
        self, creds: client_auth.PresentedAssertion, stored: Client | None, path: str
    ) -> client_auth.Authenticated:
        """RFC 7523 §3: verify the assertion with the client's keys, then record its jti."""
        realm = self.settings.realm
        client = client_auth.check_assertion_client(stored, realm)
        base = self.settings.issuer.rstrip("/")
        audiences = {self.settings.issuer, base, base + TOKEN_PATH, base + path}
        try:
            keys = await self.jwks.keys(client)
            try:
                verified = client_assertion.verify_assertion(
                    creds.assertion, client.client_id, keys, audiences, self.clock()
                )
            except client_assertion.UnknownKey:
                fresh = await self.jwks.refreshed(client)
                if fresh is None:
                    raise
                verified = client_assertion.verify_assertion(
                    creds.assertion, client.client_id, fresh, audiences, self.clock()
                )
        except client_assertion.AssertionRefused as exc:
            raise client_auth.invalid_client(realm, str(exc)) from None
        key = client_assertion.replay_key(client.client_id, verified.jti)
        if not await self.store.use_assertion(key, verified.expires_at):
            raise client_auth.invalid_client(realm, "client_assertion was already used")
        return client_auth.Authenticated(client, client.secret_hash)

    @staticmethod
    def _cache_key(headers: dict[str, str], form: dict[str, list[str]]) -> str | None:
        """The Basic header to key the auth cache by; None for credentials in the body."""
        authorization = headers.get("authorization")
        if authorization is None or not _BODY_CREDENTIALS.isdisjoint(form):
            return None
        return authorization

    def _cached_client(
        self, headers: dict[str, str], form: dict[str, list[str]]
    ) -> client_auth.Authenticated | None:
        """The client a previous request authenticated with this same Basic header, if any."""
        key = self._cache_key(headers, form)
        return None if key is None else self.auth_cache.get(key)

    async def _authenticated(
        self, headers: dict[str, str], form: dict[str, list[str]], path: str
    ) -> client_auth.Authenticated:
        """The authenticated client, from the auth cache when the same Basic header was seen;
        `path` is the endpoint called (an assertion's `aud` may name it)."""
        return self._cached_client(headers, form) or await self._authenticate(headers, form, path)

    async def _authenticate(
        self, headers: dict[str, str], form: dict[str, list[str]], path: str
    ) -> client_auth.Authenticated:
        """Check the credentials (an auth-cache miss) and remember the client."""
        auth = await self._client(headers, form, path)
        key = self._cache_key(headers, form)
        if key is not None:
            self.auth_cache.put(key, auth, self.clock())
        return auth

    async def token(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 6749 §4.4 token request → §5.1 response."""
        form = await self._form(receive, headers)
        auth = await self._authenticated(headers, form, TOKEN_PATH)
        client = auth.client
        if self.issuance is not None:
            self.issuance.take(client.client_id)
        if "dpop" in headers or client.dpop_bound_access_tokens:
            return await self._dpop_token(auth, form, headers.get("dpop"))
        issued = token_endpoint.issue(client, form, int(self.clock()))
        await self._store_token(issued, auth)
        return json_response(200, issued.body)

    async def _dpop_token(
        self, auth: client_auth.Authenticated, form: dict[str, list[str]], proof: str | None
    ) -> Response:
        """RFC 9449 §5: a token bound to the proof's key; its jti is spent only once the rest
        of the request is known to be good."""
        client = auth.client
        verified = await self.dpop.verified(proof, required=client.dpop_bound_access_tokens)
        issued = token_endpoint.issue(client, form, int(self.clock()), jkt=verified.jkt)
        await self.dpop.use(verified)
        await self._store_token(issued, auth)
        return json_response(200, issued.body, NO_STORE + await self.dpop.response_headers())

    async def _store_token(
        self, issued: token_endpoint.IssuedToken, auth: client_auth.Authenticated
    ) -> None:
        try:
            # Atomic with the insert: the client is still enabled and still has this secret
            # (the current one, or the previous one within its grace).
            await self.store.add_token(issued.record, secret_hash=auth.secret_hash)
        except StaleClient:
            self.auth_cache.forget(auth.client.client_id)
            raise client_auth.invalid_client(self.settings.realm) from None
        self.metrics.tokens_issued.inc()

    async def introspect(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 7662 §2: only clients allowed to introspect; unknown tokens are inactive."""
        form = await self._form(receive, headers)
        caller = (
            self._cached_client(headers, form)
            or await self._authenticate(headers, form, INTROSPECT_PATH)
        ).client
        self._check_may_introspect(caller)
        token = introspection.presented_token(form)
        signed = self.keys is not None and introspection_jwt.wants_jwt(headers.get("accept"))
        token_hash = hash_value(token)
        metrics = self.metrics
        # A hit needs no format check: only lookups of well-formed tokens are cached.
        cached = self.token_cache.get(token_hash, caller.client_id)
        if cached is not None:
            metrics.cache_hits.value += 1
            record, response = cached[0], cached[1]
        elif introspection.worth_looking_up(token):
            metrics.cache_misses.value += 1
            record, response = await self._look_up(token_hash, caller.client_id)
        else:
            metrics.introspected_inactive.value += 1
            return self._signed(introspection.INACTIVE, caller) if signed else _INACTIVE
        # Another audience's live token and an unknown one (the decoy) take the same steps here.
        if introspection.shown(record, caller, self.clock()):
            metrics.introspected_active.value += 1
            if signed:
                return self._signed(introspection.claims(record, self.settings.issuer), caller)
            return response
        metrics.introspected_inactive.value += 1
        return self._signed(introspection.INACTIVE, caller) if signed else _INACTIVE

    def _signed(self, body: dict[str, Any], caller: Client) -> Response:
        """RFC 9701 §5: the same answer as a JWT for the caller, signed with the current key."""
        assert self.keys is not None  # `signed` is only True with a key ring
        now = int(self.clock())
        key, private = self.keys.signer(now)
        claims = introspection_jwt.response_claims(
            body, self.settings.issuer, caller.client_id, now
        )
        jws = introspection_jwt.sign_response(claims, private, key.kid, key.alg)
        return Response(200, jws.encode("ascii"), _JWT_HEADERS)

    async def _look_up(self, token_hash: str, caller_id: str) -> tuple[AccessToken, Response]:
        """Read a token from storage (the decoy when unknown), render and cache its answer."""
        stored = await self.store.get_token(token_hash)
        record = DECOY_TOKEN if stored is None else stored
        claims = introspection.claims(record, self.settings.issuer)
        response = json_response(200, claims, _INTROSPECTION_HEADERS)
        self.token_cache.put(token_hash, record, response, caller_id)
        return record, response

    async def introspecting_client(
        self, headers: dict[str, str], form: dict[str, list[str]]
    ) -> Client:
        """RFC 7662 §2.1: only clients created with the introspect permission may ask."""
        caller = (await self._authenticated(headers, form, EVENTS_PATH)).client
        self._check_may_introspect(caller)
        return caller

    def _check_may_introspect(self, caller: Client) -> None:
        if not caller.can_introspect:
            raise client_auth.invalid_client(self.settings.realm, "client may not introspect")

    async def revoke(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 7009 §2: 200 whether or not anything was revoked; durable before the 200."""
        form = await self._form(receive, headers)
        caller = (await self._authenticated(headers, form, REVOKE_PATH)).client
        token_hash = revocation.token_hash_to_revoke(form)
        token = await self.store.get_token(token_hash) if token_hash else None
        if token_hash is not None and revocation.may_revoke(token, caller):
            revoked = await self.store.revoke_token(token_hash, int(self.clock()))
            self.token_cache.drop(token_hash)
            if revoked:
                self.metrics.revocations.inc()
                self.on_revocation()
        return json_response(200, {})

    async def metadata(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 8414 §3 metadata document."""
        scopes = await self.scopes_supported.get()
        payload: dict[str, Any] = server_metadata(self.settings.issuer, scopes)
        if self.keys is not None:
            payload |= signing_metadata(self.settings.issuer, self.keys.algorithms(self.clock()))
        document = json_response(200, payload)
        tag = entity_tag(document.body)
        validators = (_REVALIDATE, (b"etag", tag.encode("latin-1")))
        if none_match(headers.get("if-none-match"), tag):
            return Response(304, b"", validators)  # RFC 9110 §15.4.5: the validators, no body
        return json_response(200, payload, validators)

    async def signing_jwks(self, receive: Receive, headers: dict[str, str]) -> Response:
        """RFC 8414 `jwks_uri`: the public keys that sign introspection responses (RFC 9701)."""
        if self.keys is None:
            return json_response(404, {"error": "not_found"})
        return Response(200, orjson.dumps(self.keys.jwks(self.clock())), _JWKS_HEADERS)

    async def health(self, receive: Receive, headers: dict[str, str]) -> Response:
        """Liveness and storage reachability; under `serve --workers`, which worker answered."""
        await self.store.last_position()
        worker = self.settings.worker
        if worker is None:
            return json_response(200, {"status": "ok"})
        return json_response(200, {"status": "ok", "worker": worker, "pid": os.getpid()})
