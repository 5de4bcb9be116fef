"""The management half of the `Store` contract, on every backend: rotation with grace, metadata
updates, admin tokens, client activity, and audit entries written with their change."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.storage.test_conformance import NOW, MakeStore, make_client, make_token, opened
from tokengate.core import audit
from tokengate.core.audit import Action, AuditEntry, Outcome
from tokengate.core.credentials import hash_value, new_client_secret
from tokengate.core.models import AdminRole, AdminToken, EventKind
from tokengate.storage.base import StaleClient, Store

pytestmark = pytest.mark.anyio


def note(action: Action, client_id: str | None = "tgc_a", at: int = NOW) -> AuditEntry:
    """An audit entry by the CLI about `client_id`."""
    return audit.entry(action, audit.CLI_ACTOR, at, client_id=client_id, why="test")


# -- rotation with grace ----------------------------------------------------------------------


async def test_rotation_with_grace_keeps_the_previous_secret_until_its_end(store: Store) -> None:
    """With grace the old hash becomes the previous secret, valid strictly before at + grace."""
    client = make_client()
    await store.add_client(client)
    new_hash = hash_value(new_client_secret())
    assert await store.set_client_secret("tgc_a", new_hash, NOW, grace=30) is True
    rotated = await store.get_client("tgc_a")
    assert rotated is not None
    assert (rotated.secret_hash, rotated.previous_secret_hash) == (new_hash, client.secret_hash)
    assert rotated.previous_secret_expires_at == NOW + 30
    assert rotated.previous_secret_at(NOW + 29.9) == client.secret_hash
    assert rotated.previous_secret_at(NOW + 30) is None


async def test_rotation_without_grace_drops_any_previous_secret(store: Store) -> None:
    """`grace=0` is the old behaviour: one secret, even right after a rotation with grace."""
    await store.add_client(make_client())
    await store.set_client_secret("tgc_a", "1" * 64, NOW, grace=300)
    await store.set_client_secret("tgc_a", "2" * 64, NOW + 1)
    client = await store.get_client("tgc_a")
    assert client is not None
    assert (client.secret_hash, client.previous_secret_hash) == ("2" * 64, None)
    assert client.previous_secret_expires_at is None


async def test_a_second_rotation_keeps_at_most_two_secrets(store: Store) -> None:
    """Rotating during a grace keeps the newest two secrets; the oldest stops at once."""
    await store.add_client(make_client())
    await store.set_client_secret("tgc_a", "1" * 64, NOW, grace=300)
    await store.set_client_secret("tgc_a", "2" * 64, NOW + 10, grace=60)
    client = await store.get_client("tgc_a")
    assert client is not None
    assert (client.secret_hash, client.previous_secret_hash) == ("2" * 64, "1" * 64)
    assert client.previous_secret_expires_at == NOW + 70


async def test_guarded_issue_accepts_the_previous_secret_only_within_grace(store: Store) -> None:
    """A token endpoint insert guarded by the previous secret succeeds before the grace end and
    raises StaleClient from then on."""
    client = make_client()
    await store.add_client(client)
    await store.set_client_secret("tgc_a", "1" * 64, NOW, grace=30)
    inside = make_token(issued_at=NOW + 29)
    await store.add_token(inside, secret_hash=client.secret_hash)
    assert await store.get_token(inside.token_hash) == inside
    with pytest.raises(StaleClient):
        await store.add_token(make_token(issued_at=NOW + 30), secret_hash=client.secret_hash)
    await store.add_token(make_token(issued_at=NOW + 31), secret_hash="1" * 64)


# -- metadata updates -------------------------------------------------------------------------


async def test_update_client_replaces_metadata_and_keeps_secrets(store: Store) -> None:
    """Name, scopes, audiences, introspection, TTL, registration hash and method change; the
    secrets and creation time stay; CLIENT_UPDATED is emitted; a disabled client is re-enabled."""
    client = make_client()
    await store.add_client(client)
    await store.set_client_secret("tgc_a", "1" * 64, NOW, grace=30)
    await store.disable_client("tgc_a", NOW)
    changed = dataclasses.replace(
        client, name="renamed", scopes=frozenset({"x"}), audiences=("https://c.example",),
        can_introspect=False, token_ttl=60, secret_hash="f" * 64, created_at=1,
        registration_token_hash="9" * 64, auth_method="client_secret_post",
    )  # fmt: skip
    assert await store.update_client(changed, NOW + 1) is True
    stored = await store.get_client("tgc_a")
    expected = dataclasses.replace(
        changed, secret_hash="1" * 64, created_at=client.created_at, secret_rotated_at=NOW,
        previous_secret_hash=client.secret_hash, previous_secret_expires_at=NOW + 30,
    )  # fmt: skip
    assert stored == expected
    assert (await store.events_after(0))[-1].kind == EventKind.CLIENT_UPDATED


async def test_update_of_unknown_client_is_false_and_silent(store: Store) -> None:
    """Updating an unknown client returns False, emits nothing and audits nothing."""
    updated = await store.update_client(
        make_client("tgc_x"), NOW, audit=note(Action.CLIENT_UPDATED)
    )
    assert updated is False
    assert await store.last_position() == 0
    assert await store.audit_after(0) == []


async def test_update_refuses_to_disable(store: Store) -> None:
    """Disabling through update_client is refused: disable_client also revokes tokens."""
    client = make_client()
    await store.add_client(client)
    with pytest.raises(ValueError, match="disable_client"):
        await store.update_client(dataclasses.replace(client, disabled=True), NOW)


# -- audit entries ----------------------------------------------------------------------------


async def test_every_change_appends_its_audit_entry(store: Store) -> None:
    """Each management write given an entry stores it, in order, with positions increasing."""
    client = make_client()
    token = make_token()
    await store.add_client(client, audit=note(Action.CLIENT_CREATED))
    await store.update_client(client, NOW, audit=note(Action.CLIENT_UPDATED))
    await store.set_client_secret("tgc_a", "1" * 64, NOW, audit=note(Action.CLIENT_SECRET_ROTATED))
    await store.add_token(token)
    revoked = note(Action.TOKEN_REVOKED, client_id=None)
    await store.revoke_token(token.token_hash, NOW, audit=revoked)
    await store.disable_client("tgc_a", NOW, audit=note(Action.CLIENT_DISABLED))
    await store.delete_client("tgc_a", NOW, audit=note(Action.CLIENT_DELETED))
    admin = AdminToken("8" * 64, "tgadm_1", AdminRole.ADMIN, "ci", NOW, NOW + 60)
    await store.add_admin_token(admin, audit=note(Action.ADMIN_TOKEN_CREATED, client_id=None))
    await store.append_audit(note(Action.REGISTRATION_REFUSED, client_id=None))
    entries = await store.audit_after(0)
    assert [e.action for e in entries] == [
        Action.CLIENT_CREATED, Action.CLIENT_UPDATED, Action.CLIENT_SECRET_ROTATED,
        Action.TOKEN_REVOKED, Action.CLIENT_DISABLED, Action.CLIENT_DELETED,
        Action.ADMIN_TOKEN_CREATED, Action.REGISTRATION_REFUSED,
    ]  # fmt: skip
    assert entries[3].client_id == "tgc_a"  # filled in from the revoked token
    positions = [e.position for e in entries]
    assert positions == sorted(set(positions))
    assert positions[0] > 0
    first = entries[0]
    assert (first.actor, first.outcome, first.detail) == ("cli", Outcome.OK, '{"why":"test"}')


async def test_a_write_that_changes_nothing_audits_nothing(store: Store) -> None:
    """Unknown client, duplicate id, stale issue: no change, so no entry either."""
    await store.disable_client("tgc_x", NOW, audit=note(Action.CLIENT_DISABLED))
    await store.delete_client("tgc_x", NOW, audit=note(Action.CLIENT_DELETED))
    await store.set_client_secret("tgc_x", "1" * 64, NOW, audit=note(Action.CLIENT_DELETED))
    await store.revoke_token("0" * 64, NOW, audit=note(Action.TOKEN_REVOKED))
    await store.add_client(make_client())
    with pytest.raises(ValueError, match="tgc_a"):
        await store.add_client(make_client(), audit=note(Action.CLIENT_CREATED))
    assert await store.audit_after(0) == []


async def test_audit_after_filters_by_position_time_and_client(store: Store) -> None:
    """`since` keeps entries at or after a time, `client_id` one client's, `limit` caps."""
    for i, cid in enumerate(["tgc_a", "tgc_b", "tgc_a", None]):
        await store.append_audit(note(Action.CLIENT_UPDATED, client_id=cid, at=NOW + i))
    everything = await store.audit_after(0)
    assert [e.occurred_at for e in await store.audit_after(0, since=NOW + 2)] == [NOW + 2, NOW + 3]
    assert [e.client_id for e in await store.audit_after(0, client_id="tgc_a")] == ["tgc_a"] * 2
    assert await store.audit_after(everything[1].position) == everything[2:]
    assert await store.audit_after(0, limit=1) == everything[:1]


async def test_audit_entries_outlive_the_store(make_durable: MakeStore) -> None:
    """A durable backend's entries are there after a reopen, like the change they record."""
    async with opened(make_durable) as store:
        await store.add_client(make_client(), audit=note(Action.CLIENT_CREATED))
    async with opened(make_durable) as store:
        [entry] = await store.audit_after(0)
        assert entry.action == Action.CLIENT_CREATED


async def test_concurrent_audited_writes_all_land(store: Store) -> None:
    """Writes racing on one store each commit their own entry, none lost."""
    await asyncio.gather(
        *(store.add_client(make_client(f"tgc_{i}"), audit=note(Action.CLIENT_CREATED, f"tgc_{i}"))
          for i in range(20))
    )  # fmt: skip
    assert sorted(e.client_id or "" for e in await store.audit_after(0)) == sorted(
        f"tgc_{i}" for i in range(20)
    )


# -- admin tokens and activity ----------------------------------------------------------------


async def test_admin_tokens_round_trip_and_reject_duplicates(store: Store) -> None:
    """An admin token comes back equal by its hash; the same hash twice is a ValueError."""
    admin = AdminToken("8" * 64, "tgadm_1", AdminRole.REGISTER, "ci", NOW, NOW + 60)
    await store.add_admin_token(admin)
    assert await store.get_admin_token("8" * 64) == admin
    assert await store.get_admin_token("9" * 64) is None
    with pytest.raises(ValueError, match="tgadm_1"):
        await store.add_admin_token(admin)
    assert admin.is_usable(NOW + 59)
    assert not admin.is_usable(NOW + 60)


async def test_admin_tokens_are_listed_and_revoked_once(store: Store) -> None:
    """Listed oldest first whatever their state; revoked by public id once, in the same
    transaction as its audit entry; an unknown id or a second revoke changes nothing."""
    first = AdminToken("8" * 64, "tgadm_1", AdminRole.REGISTER, "ci", NOW, NOW + 60)
    second = AdminToken("9" * 64, "tgadm_2", AdminRole.ADMIN, "", NOW + 1, NOW + 60)
    await store.add_admin_token(second)
    await store.add_admin_token(first)
    assert await store.list_admin_tokens() == [first, second]
    revoking = note(Action.ADMIN_TOKEN_REVOKED, client_id=None)
    assert await store.revoke_admin_token("tgadm_2", NOW + 5, audit=revoking)
    assert not await store.revoke_admin_token("tgadm_2", NOW + 6, audit=revoking)
    assert not await store.revoke_admin_token("tgadm_x", NOW + 6, audit=revoking)
    revoked = await store.get_admin_token("9" * 64)
    assert revoked is not None
    assert (revoked.revoked_at, revoked.is_usable(NOW + 5)) == (NOW + 5, False)
    assert (await store.get_admin_token("8" * 64)) == first
    assert [e.action for e in await store.audit_after(0)] == [Action.ADMIN_TOKEN_REVOKED]


async def test_client_activity_counts_recent_issues_and_the_last_one(store: Store) -> None:
    """Per client: tokens issued at or after `since`, and the newest issue time."""
    for cid in ("tgc_a", "tgc_b"):
        await store.add_client(make_client(cid))
    for cid, at in (("tgc_a", NOW - 7200), ("tgc_a", NOW - 10), ("tgc_a", NOW), ("tgc_b", 5)):
        await store.add_token(make_token(cid, issued_at=at))
    activity = await store.client_activity(NOW - 3600)
    assert (activity["tgc_a"].issued_since, activity["tgc_a"].last_issued_at) == (2, NOW)
    assert (activity["tgc_b"].issued_since, activity["tgc_b"].last_issued_at) == (0, 5)
