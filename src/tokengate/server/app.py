"""The authorization server as a pure ASGI application: `create_app(settings, store)`.

Routing is a dictionary lookup and every endpoint is a short pipeline (see `endpoints`), so the
hot paths (token, introspection) pay for no framework machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from tokengate.asgi.body import ClientDisconnected
from tokengate.asgi.lifespan import serve_lifespan
from tokengate.asgi.send import response_messages, send_response
from tokengate.asgi.types import Receive, Scope, Send
from tokengate.core.errors import (
    InvalidClient,
    MethodNotAllowed,
    OAuthError,
    ServerError,
    TemporarilyUnavailable,
)
from tokengate.core.responses import Response, error_response, json_response
from tokengate.core.wire import (
    ADMIN_API_PATH,
    ADMIN_CONSOLE_PATH,
    EVENTS_PATH,
    INTROSPECT_PATH,
    JWKS_PATH,
    METADATA_PATH,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
)
from tokengate.logs import RequestIds
from tokengate.server.admin_api import AdminApi
from tokengate.server.admin_auth import AdminGate
from tokengate.server.console import Console
from tokengate.server.endpoints import Clock, Endpoints
from tokengate.server.errors import is_storage_outage
from tokengate.server.events import EventHub
from tokengate.server.fanout import Fanout, StreamsFull
from tokengate.server.metrics import ServerMetrics
from tokengate.server.registration import Registration
from tokengate.server.request_headers import request_headers
from tokengate.server.settings import Settings
from tokengate.server.signing import KeyRing
from tokengate.server.stream import EventStream, start_position
from tokengate.storage.base import PurgeInProgress, Store

OPENAPI_PATH = "/openapi.json"
log = logging.getLogger("tokengate.server")
access_log = logging.getLogger("tokengate.access")
Handler = Callable[[Receive, dict[str, str]], Awaitable[Response]]


class AuthorizationServer:
    """ASGI callable serving the token, introspection, revocation and metadata endpoints."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock = time.time,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or ServerMetrics()
        self.request_ids = RequestIds()
        fanout = Fanout(
            max_streams=settings.max_event_streams,
            queue_bytes=settings.event_queue_bytes,
            heartbeat=settings.event_heartbeat,
        )
        self.hub = EventHub(store, settings.event_poll_interval, fanout)
        kek = settings.key_encryption_key
        self.keys = (
            None if kek is None else KeyRing(store, kek, clock, settings.key_refresh_interval)
        )
        self.endpoints = Endpoints(
            settings, store, clock, self.metrics,
            on_revocation=self.hub.poke, cache_trusted=self.hub.is_current, keys=self.keys,
        )  # fmt: skip
        self.metrics.gauge_function(
            "tokengate_token_cache_entries", "Token records cached in this process",
            lambda: len(self.endpoints.token_cache),
        )  # fmt: skip
        self.metrics.gauge_function(
            "tokengate_event_position", "Newest revocation event seen", lambda: self.hub.position
        )
        self.hub.add_listener(self.endpoints.auth_cache.on_events)
        self.hub.add_listener(self.endpoints.token_cache.on_events)
        self.hub.add_listener(self.endpoints.scopes_supported.on_events)
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream = EventStream(store, self.hub)
        self._purger: asyncio.Task[None] | None = None
        e = self.endpoints
        gate = AdminGate(store, settings.realm, e.security)
        self.registration = Registration(
            store, gate, e.body, settings.issuer, clock=clock, on_change=self.hub.poke
        )
        self.admin_api = AdminApi(
            store, gate, e.body, clock, on_change=self.hub.poke, keys=self.keys
        )
        self.console = (
            Console(settings.issuer, store, gate, e.body, hub=self.hub, clock=clock)
            if settings.admin_console
            else None
        )
        self.routes: dict[str, tuple[frozenset[str], Handler]] = {
            TOKEN_PATH: (frozenset({"POST"}), e.token),
            INTROSPECT_PATH: (frozenset({"POST"}), e.introspect),
            REVOKE_PATH: (frozenset({"POST"}), e.revoke),
            METADATA_PATH: (frozenset({"GET", "HEAD"}), e.metadata),
            JWKS_PATH: (frozenset({"GET", "HEAD"}), e.signing_jwks),
            REGISTER_PATH: (frozenset({"POST"}), self.registration.register),
            "/healthz": (frozenset({"GET", "HEAD"}), e.health),
            "/metrics": (frozenset({"GET"}), self._metrics),
            OPENAPI_PATH: (frozenset({"GET", "HEAD"}), self._openapi),
        }
        self._openapi_body = openapi_document()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The request path is written out in one function: on the introspection hot path
        # every coroutine level and helper call is a measurable share of the request.
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        if path == EVENTS_PATH and method == "GET":
            await self._events(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _NO_HEADERS
        try:
            headers = request_headers(scope)
            route = self.routes.get(path)
            if route is None:
                response = await self._below(scope, receive, headers)
            elif method in route[0]:
                response = await route[1](receive, headers)
            else:
                allow = ", ".join(sorted(route[0]))
                response = error_response(
                    MethodNotAllowed(f"use {allow}", headers={"Allow": allow})
                )
        except ClientDisconnected:
            return
        except InvalidClient as exc:
            self.metrics.auth_failed(path)
            response = error_response(exc)
        except OAuthError as exc:
            response = error_response(exc)
        except Exception as exc:
            response = self._unexpected(exc)
        # X-Request-Id: the caller's is echoed (a malformed one replaced); one is minted for a
        # request without one only when the access log is on, so that it names a log line.
        incoming = headers.get("x-request-id")
        request_id = None
        extra: tuple[tuple[bytes, bytes], ...] = ()
        if incoming is not None or self.settings.access_log:
            request_id = self.request_ids.take(incoming)
            extra = ((b"x-request-id", request_id.encode("latin-1")),)
        start, body = response_messages(response, head_only=method == "HEAD", extra_headers=extra)
        await send(start)
        await send(body)
        status = response.status
        elapsed = time.perf_counter() - started
        self.metrics.observe(path, status, elapsed)
        if self.settings.access_log:
            access_log.info(
                "%s %s %d", method, path, response.status,
                extra={"request_id": request_id, "method": method, "path": path,
                       "status": response.status, "duration_ms": round(elapsed * 1000, 3)},
            )  # fmt: skip

    async def _below(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Response:
        """Paths with a variable part: RFC 7592 client URIs, the management API, the console."""
        method, path = scope["method"], scope["path"]
        if path.startswith(REGISTER_PATH + "/") and "/" not in path[len(REGISTER_PATH) + 1 :]:
            client_id = path[len(REGISTER_PATH) + 1 :]
            if client_id:
                return await self.registration.configure(method, client_id, receive, headers)
        if path == ADMIN_API_PATH or path.startswith(ADMIN_API_PATH + "/"):
            query = scope.get("query_string", b"")
            return await self.admin_api.handle(method, path, query, receive, headers)
        if self.console is not None and (path == ADMIN_CONSOLE_PATH or path.startswith("/admin/")):
            return await self.console.handle(scope, receive, headers)
        return _no_route(path)

    async def _openapi(self, receive: Receive, headers: dict[str, str]) -> Response:
        """The OpenAPI 3.1 description of these endpoints (kept in the repository)."""
        return Response(200, self._openapi_body, ((b"content-type", b"application/json"),))

    async def _metrics(self, receive: Receive, headers: dict[str, str]) -> Response:
        """Prometheus exposition."""
        content_type = self.metrics.content_type.encode("latin-1")
        return Response(200, self.metrics.render(), ((b"content-type", content_type),))

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an introspecting client, then stream revocation events (SSE)."""
        try:
            headers = request_headers(scope)
            await self.endpoints.introspecting_client(headers, {})
            last_id = _header(scope, b"last-event-id")
            position = start_position(last_id, self.hub.position)
            stream_task = asyncio.current_task()
            assert stream_task is not None
            subscription = self.hub.subscribe(send, stream_task.cancel)
        except StreamsFull as exc:
            retry = {"Retry-After": str(self.settings.retry_after_seconds)}
            await send_response(
                send, error_response(TemporarilyUnavailable(str(exc), headers=retry))
            )
            return
        except OAuthError as exc:
            await send_response(send, error_response(exc))
            return
        except Exception as exc:
            await send_response(send, self._unexpected(exc))
            return
        self.metrics.event_subscribers.inc()
        try:
            await self._stream.run(subscription, position, receive, send)
        finally:
            self.metrics.event_subscribers.dec()

    def _unexpected(self, exc: Exception) -> Response:
        if is_storage_outage(exc):
            log.warning("storage unavailable: %s", type(exc).__name__)
            retry = {"Retry-After": str(self.settings.retry_after_seconds)}
            return error_response(TemporarilyUnavailable("storage unavailable", headers=retry))
        log.exception("unexpected error")
        return error_response(ServerError())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.startup, self.shutdown, log)

    async def startup(self) -> None:
        """Open the store (creating the schema) and start the expired-token purger (in the one
        process that purges: `Settings.purger`)."""
        self._loop = asyncio.get_running_loop()
        await self.store.open()
        if self.keys is not None:
            await self.keys.start()
        else:
            log.warning(
                "signed introspection responses (RFC 9701) are off: no key-encryption key"
                " (TOKENGATE_KEY_ENCRYPTION_KEY or --key-encryption-key-file)"
            )
        await self.hub.start()
        if self.settings.purger:
            self._purger = asyncio.create_task(self._purge_forever())

    def begin_shutdown(self) -> None:
        """End every event stream now (callable from a signal handler or another thread), so
        a graceful stop does not wait for subscribers that would never hang up."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.hub.fanout.end)

    async def shutdown(self) -> None:
        """Stop background work and close the store."""
        self.endpoints.body.close()
        await self.endpoints.jwks.close()
        if self.keys is not None:
            await self.keys.stop()
        await self.hub.stop()
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.store.close()

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.purge_interval)
            try:
                purged = await self.store.purge_expired(int(self._clock()))
                await self.store.purge_assertions(int(self._clock()))
            except PurgeInProgress:  # another replica or worker is purging: its turn
                continue
            except Exception:  # a failed purge is retried next interval
                log.warning("purge of expired tokens failed", exc_info=True)
                continue
            if purged:
                log.info("purged %d expired tokens", purged)


_NO_HEADERS: dict[str, str] = {}


def _no_route(path: str) -> Response:
    if path == EVENTS_PATH:  # streamed by `_events` for GET; any other method lands here
        return error_response(MethodNotAllowed("use GET", headers={"Allow": "GET"}))
    return json_response(404, {"error": "not_found"})


def openapi_document() -> bytes:
    """The packaged OpenAPI document."""
    return resources.files("tokengate.server").joinpath("openapi.json").read_bytes()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def create_app(
    settings: Settings,
    store: Store,
    clock: Clock = time.time,
    metrics: ServerMetrics | None = None,
) -> AuthorizationServer:
    """Build the ASGI app; the store is opened at ASGI lifespan startup."""
    return AuthorizationServer(settings, store, clock, metrics)
