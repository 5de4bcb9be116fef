"""In-process fixtures: the ASGI app over a memory store, driven by httpx."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from tokengate.core import credentials
from tokengate.core.models import AdminRole, Client
from tokengate.management.service import Management
from tokengate.server import Settings, create_app
from tokengate.storage.memory import MemoryStore

ISSUER = "https://as.example.test"


class FakeClock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@dataclass
class Registered:
    """A client and its plaintext secret."""

    client: Client
    secret: str

    @property
    def client_id(self) -> str:
        return self.client.client_id

    def basic(self) -> dict[str, str]:
        raw = f"{quote(self.client_id, safe='')}:{quote(self.secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


@dataclass
class Harness:
    """The app, its store, a clock and an HTTP client."""

    store: MemoryStore
    clock: FakeClock
    http: httpx.AsyncClient

    async def register(
        self,
        scopes: str = "read write",
        *,
        introspect: bool = False,
        audiences: tuple[str, ...] = (),
        ttl: int = 3600,
        client_id: str | None = None,
        secret: str | None = None,
    ) -> Registered:
        secret = secret or credentials.new_client_secret()
        client = Client(
            client_id=client_id or credentials.new_client_id(),
            name="test",
            secret_hash=credentials.hash_value(secret),
            scopes=frozenset(scopes.split()),
            audiences=audiences,
            can_introspect=introspect,
            token_ttl=ttl,
        )
        await self.store.add_client(client)
        return Registered(client, secret)

    async def token(self, who: Registered, **form: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", **form}
        return await self.http.post("/oauth2/token", data=data, headers=who.basic())

    async def issue(self, who: Registered, **form: str) -> str:
        response = await self.token(who, **form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def admin_token(self, role: AdminRole = AdminRole.ADMIN, ttl: int = 3600) -> str:
        """A fresh admin token (or, with REGISTER, an initial access token) value."""
        management = Management(self.store, "test", self.clock)
        return (await management.create_admin_token(role, ttl, "test"))[1]

    async def introspect(self, rs: Registered, token: str, **form: str) -> httpx.Response:
        return await self.http.post(
            "/oauth2/introspect", data={"token": token, **form}, headers=rs.basic()
        )


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A fresh app over a memory store."""
    store = MemoryStore()
    clock = FakeClock()
    app = create_app(Settings(issuer=ISSUER), store, clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Harness(store, clock, http)
    await app.shutdown()
