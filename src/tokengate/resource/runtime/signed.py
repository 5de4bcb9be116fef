"""The issuer's JWKS for RFC 9701 signed introspection responses: fetched once, kept
`CACHE_TTL` seconds, refetched when a response names a `kid` it lacks (at most once per
`REFRESH_INTERVAL`, so a stream of forged `kid`s cannot make us hammer the issuer), concurrent
fetches sharing one request. A failed fetch refuses the answer: fail closed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc.jwk import KeySet

from tokengate.resource.protocol.errors import IntrospectionUnavailable
from tokengate.resource.protocol.rfc7662 import HttpRequest, HttpResponse
from tokengate.resource.protocol.signed import (
    Expected,
    UnknownSigningKey,
    check_signed,
    jwks_request,
    parse_jwks_response,
)
from tokengate.resource.runtime.singleflight import SingleFlight

CACHE_TTL = 300.0
REFRESH_INTERVAL = 30.0
RETRY_INTERVAL = 1.0  # after a failed fetch, answers are refused this long without refetching
Fetch = Callable[[HttpRequest], Awaitable[HttpResponse]]


class SignedResponses:
    """Verifies signed answers with the issuer's keys (`jwks_url` given or discovered)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.expected = Expected(issuer, audience)
        self.jwks_url = jwks_url
        self._monotonic = monotonic
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self._flight = SingleFlight[KeySet]()

    async def claims(self, response: HttpResponse, fetch: Fetch) -> dict[str, Any]:
        """The RFC 7662 object of a verified answer; `IntrospectionUnavailable` otherwise."""
        keys = await self._current(fetch)
        try:
            return check_signed(response, keys, self.expected, self._clock())
        except UnknownSigningKey:
            if self._monotonic() - self._fetched_at < REFRESH_INTERVAL:
                raise IntrospectionUnavailable("signed answer names an unknown key") from None
        fresh = await self._refetch(fetch)
        try:
            return check_signed(response, fresh, self.expected, self._clock())
        except UnknownSigningKey:
            raise IntrospectionUnavailable("signed answer names an unknown key") from None

    async def _current(self, fetch: Fetch) -> KeySet:
        if self._keys is not None and self._monotonic() - self._fetched_at < CACHE_TTL:
            return self._keys
        return await self._refetch(fetch)

    async def _refetch(self, fetch: Fetch) -> KeySet:
        return await self._flight.do("jwks", lambda: self._download(fetch))

    async def _download(self, fetch: Fetch) -> KeySet:
        if self.jwks_url is None:
            raise IntrospectionUnavailable("the issuer's jwks_uri is not known yet")
        if self._monotonic() - self._failed_at < RETRY_INTERVAL:
            raise IntrospectionUnavailable("the issuer's JWKS could not be fetched just now")
        try:
            keys = parse_jwks_response(await fetch(jwks_request(self.jwks_url)))
        except BaseException:
            self._failed_at = self._monotonic()
            raise
        self._keys, self._fetched_at = keys, self._monotonic()
        return keys
