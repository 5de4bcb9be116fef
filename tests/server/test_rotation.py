"""Secret rotation with grace at the endpoints: both secrets work during the overlap, the old
one stops at its end (cached authentications included), and `--grace 0` cuts it at once."""

from __future__ import annotations

import base64

import pytest

from tokengate.core.audit import CLI_ACTOR
from tokengate.management.service import Management

from .conftest import Harness, Registered

pytestmark = pytest.mark.anyio


async def rotate(harness: Harness, who: Registered, grace: int) -> Registered:
    """Rotate `who`'s secret with `grace`; the same client with the new secret."""
    management = Management(harness.store, CLI_ACTOR, harness.clock)
    secret = await management.rotate_secret(who.client_id, grace)
    assert secret is not None
    client = await harness.store.get_client(who.client_id)
    assert client is not None
    return Registered(client, secret)


async def status(harness: Harness, who: Registered) -> int:
    """The token endpoint's status for `who` with Basic credentials."""
    return (await harness.token(who)).status_code


async def test_both_secrets_work_during_the_grace(harness: Harness) -> None:
    """The new secret works at once and the old one keeps working until the grace ends."""
    old = await harness.register()
    new = await rotate(harness, old, grace=60)
    assert await status(harness, new) == 200
    assert await status(harness, old) == 200
    harness.clock.now += 59
    assert await status(harness, old) == 200


async def test_old_secret_stops_at_the_grace_end_even_when_cached(harness: Harness) -> None:
    """An authentication cached with the old secret ends with the grace: 401 right after."""
    old = await harness.register(introspect=True)
    token = await harness.issue(old)
    new = await rotate(harness, old, grace=10)
    assert (await harness.introspect(old, token)).status_code == 200  # cached now
    harness.clock.now += 10
    assert await status(harness, old) == 401
    assert (await harness.introspect(old, token)).status_code == 401
    assert await status(harness, new) == 200


async def test_grace_zero_stops_the_old_secret_at_once(harness: Harness) -> None:
    """`grace=0` is today's behaviour: the old secret fails on the next request."""
    old = await harness.register()
    assert await status(harness, old) == 200
    new = await rotate(harness, old, grace=0)
    assert await status(harness, old) == 401
    assert await status(harness, new) == 200


async def test_a_second_rotation_ends_the_oldest_secret(harness: Harness) -> None:
    """At most two secrets: rotating again during a grace cuts the first secret off."""
    first = await harness.register()
    second = await rotate(harness, first, grace=300)
    third = await rotate(harness, second, grace=300)
    assert await status(harness, first) == 401
    assert await status(harness, second) == 200
    assert await status(harness, third) == 200


async def test_previous_secret_works_in_the_body_too(harness: Harness) -> None:
    """`client_secret_post` with the old secret is accepted during the grace, then refused."""
    old = await harness.register()
    await rotate(harness, old, grace=5)
    form = {"grant_type": "client_credentials", "client_id": old.client_id}
    response = await harness.http.post("/oauth2/token", data=form | {"client_secret": old.secret})
    assert response.status_code == 200
    harness.clock.now += 5
    response = await harness.http.post("/oauth2/token", data=form | {"client_secret": old.secret})
    assert response.status_code == 401


async def test_throttling_engaged_is_audited_once_per_window(harness: Harness) -> None:
    """Hammering a client with a wrong secret reaches 429, and the audit log records that the
    throttle engaged once, not once per refused request."""
    who = await harness.register()
    raw = base64.b64encode(f"{who.client_id}:wrong".encode()).decode()
    form, headers = {"grant_type": "client_credentials"}, {"Authorization": f"Basic {raw}"}
    statuses = [
        (await harness.http.post("/oauth2/token", data=form, headers=headers)).status_code
        for _ in range(15)
    ]
    assert statuses[-1] == 429
    entries = await harness.store.audit_after(0)
    engaged = [e for e in entries if e.action.value == "throttling_engaged"]
    assert len(engaged) == 1
    assert engaged[0].client_id == who.client_id
