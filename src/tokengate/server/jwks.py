"""The public keys of `private_key_jwt` clients (RFC 7523 §2.2, RFC 7591 §2 `jwks`/`jwks_uri`).

An inline JWKS is parsed once per distinct text and kept. A `jwks_uri` is fetched with httpx:
no redirects, `FETCH_TIMEOUT` per phase and `FETCH_DEADLINE` in all, at most
`client_assertion.MAX_JWKS_BYTES`, and the answer must be a JWKS of public keys
(`client_assertion.parse_jwks`). A fetched set is kept `CACHE_TTL` seconds; an assertion whose
`kid` is not in it triggers one refetch, at most once per `REFRESH_INTERVAL` per URL, so a
client can rotate its keys without waiting and a stream of bogus `kid`s cannot make this
server hammer the URL. Concurrent fetches of one URL share one request. A failed fetch is
`AssertionRefused` (an `invalid_client`): the keys cannot be known, so nothing is accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
from joserfc.jwk import KeySet

from tokengate.core.client_assertion import MAX_JWKS_BYTES, AssertionRefused, BadJwks, parse_jwks
from tokengate.core.models import Client

FETCH_TIMEOUT = 3.0
FETCH_DEADLINE = 5.0
CACHE_TTL = 300.0
REFRESH_INTERVAL = 30.0
MAX_ENTRIES = 1024


class JwksResolver:
    """Client → its public `KeySet`, from the stored JWKS or its (cached) `jwks_uri`."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._http: httpx.AsyncClient | None = None
        self._inline: dict[str, KeySet] = {}
        self._fetched: dict[str, tuple[KeySet, float]] = {}  # uri → keys, fetch time
        self._flights: dict[str, asyncio.Task[KeySet]] = {}

    async def keys(self, client: Client) -> KeySet:
        """The client's keys, as cached."""
        if client.jwks is not None:
            return self._parsed(client.jwks)
        uri = _uri(client)
        cached = self._fetched.get(uri)
        if cached is not None and self._clock() - cached[1] < CACHE_TTL:
            return cached[0]
        return await self._fetch(uri)

    async def refreshed(self, client: Client) -> KeySet | None:
        """Keys fetched anew after an unknown `kid`; None when there is nothing to refetch
        (inline JWKS) or the URL was fetched less than `REFRESH_INTERVAL` ago."""
        if client.jwks is not None:
            return None
        uri = _uri(client)
        cached = self._fetched.get(uri)
        if cached is not None and self._clock() - cached[1] < REFRESH_INTERVAL:
            return None
        return await self._fetch(uri)

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _parsed(self, text: str) -> KeySet:
        found = self._inline.get(text)
        if found is None:
            try:
                found = parse_jwks(json.loads(text))
            except (BadJwks, ValueError) as exc:  # stored before a stricter check existed
                raise AssertionRefused(f"the client's jwks is unusable: {exc}") from None
            if len(self._inline) >= MAX_ENTRIES:
                self._inline.clear()
            self._inline[text] = found
        return found

    async def _fetch(self, uri: str) -> KeySet:
        flight = self._flights.get(uri)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._download(uri))
            self._flights[uri] = flight
            flight.add_done_callback(lambda _: self._flights.pop(uri, None))
        return await asyncio.shield(flight)

    async def _download(self, uri: str) -> KeySet:
        try:
            async with asyncio.timeout(FETCH_DEADLINE):
                body = await self._get(uri)
            keys = parse_jwks(json.loads(body))
        except (httpx.HTTPError, TimeoutError, BadJwks, ValueError, RecursionError) as exc:
            raise AssertionRefused(f"the client's jwks_uri gave no usable JWKS: {exc}") from None
        if len(self._fetched) >= MAX_ENTRIES:
            self._fetched.clear()
        self._fetched[uri] = (keys, self._clock())
        return keys

    async def _get(self, uri: str) -> bytes:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport, timeout=FETCH_TIMEOUT, follow_redirects=False
            )
        async with self._http.stream("GET", uri, headers={"accept": "application/json"}) as r:
            if r.status_code != 200:
                raise ValueError(f"status {r.status_code}")
            body = b""
            async for chunk in r.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
            return body


def _uri(client: Client) -> str:
    if client.jwks_uri is None:
        raise AssertionRefused("the client has no keys")
    return client.jwks_uri
