"""One behaviour, every backend: the `Store` contract checked on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest

from tokengate.core.client_assertion import replay_key
from tokengate.core.credentials import hash_value, new_access_token, new_client_secret, new_jti
from tokengate.core.models import AccessToken, Client, EventKind
from tokengate.storage.base import PurgeInProgress, PurgePace, StaleClient, Store

pytestmark = pytest.mark.anyio

MakeStore = Callable[[], Store]
NOW = 1_700_000_000


def make_client(client_id: str = "tgc_a", *, created_at: int = NOW) -> Client:
    """A client with every field set away from its default."""
    return Client(
        client_id=client_id,
        name=f"Client {client_id}",
        secret_hash=hash_value(new_client_secret()),
        scopes=frozenset({"read", "write", "urn:example:admin"}),
        audiences=("https://api.example", "urn:with space", "https://b.example"),
        can_introspect=True,
        token_ttl=600,
        created_at=created_at,
        secret_rotated_at=created_at,
        auth_method="private_key_jwt",
        jwks='{"keys":[{"crv":"P-256","kty":"EC","x":"x","y":"y"}]}',
        jwks_uri="https://client.example/jwks.json",
        dpop_bound_access_tokens=True,
    )


def make_token(client_id: str = "tgc_a", *, issued_at: int = NOW, ttl: int = 3600) -> AccessToken:
    """A token record for `client_id`, as the token endpoint would store it."""
    return AccessToken(
        token_hash=hash_value(new_access_token()),
        jti=new_jti(),
        client_id=client_id,
        scopes=frozenset({"read", "write"}),
        audiences=("https://api.example",),
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    )


@contextlib.asynccontextmanager
async def opened(make: MakeStore) -> AsyncIterator[Store]:
    """Open a new store on the test's database; close it afterwards."""
    store = make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def kinds(store: Store) -> list[EventKind]:
    """The kinds of all events, oldest first."""
    return [event.kind for event in await store.events_after(0)]


# -- clients --------------------------------------------------------------------------------


async def test_add_then_get_client_round_trips_every_field(store: Store) -> None:
    """A stored client comes back equal, field for field (scopes, audience order, flags)."""
    client = make_client()
    await store.add_client(client)
    assert await store.get_client(client.client_id) == client


async def test_get_unknown_client_is_none(store: Store) -> None:
    """Looking up a client id never stored gives None."""
    assert await store.get_client("tgc_nobody") is None


async def test_list_clients_orders_by_creation_then_id(store: Store) -> None:
    """list_clients is sorted by created_at, ties broken by client id."""
    clients = [
        make_client("tgc_c", created_at=NOW + 1),
        make_client("tgc_b", created_at=NOW),
        make_client("tgc_a", created_at=NOW + 1),
    ]
    for client in clients:
        await store.add_client(client)
    assert [c.client_id for c in await store.list_clients()] == ["tgc_b", "tgc_a", "tgc_c"]


async def test_list_clients_empty(store: Store) -> None:
    """A fresh store has no clients."""
    assert await store.list_clients() == []


async def test_client_scopes_is_the_union_of_the_clients_scopes(store: Store) -> None:
    """`client_scopes` is every client's scopes as one set, shared sets counted once, disabled
    clients included (as `list_clients` would give); empty for no client."""
    assert await store.client_scopes() == frozenset()
    await store.add_client(make_client("tgc_a"))
    await store.add_client(make_client("tgc_b"))
    other = dataclasses.replace(make_client("tgc_c"), scopes=frozenset({"read", "profile"}))
    await store.add_client(other)
    await store.add_client(dataclasses.replace(make_client("tgc_d"), scopes=frozenset()))
    await store.disable_client("tgc_c", NOW)
    expected = {s for c in await store.list_clients() for s in c.scopes}
    assert (
        await store.client_scopes() == expected == {"read", "write", "urn:example:admin", "profile"}
    )


async def test_duplicate_client_id_is_rejected(store: Store) -> None:
    """Adding a client whose id exists raises ValueError and keeps the original."""
    original = make_client()
    await store.add_client(original)
    with pytest.raises(ValueError, match="tgc_a"):
        await store.add_client(dataclasses.replace(original, name="impostor"))
    assert await store.get_client("tgc_a") == original


async def test_set_client_secret_replaces_hash_and_emits_secret_rotated(store: Store) -> None:
    """Rotation stores the new hash and time and appends one SECRET_ROTATED event."""
    await store.add_client(make_client())
    new_hash = hash_value(new_client_secret())
    assert await store.set_client_secret("tgc_a", new_hash, NOW + 5) is True
    client = await store.get_client("tgc_a")
    assert client is not None
    assert (client.secret_hash, client.secret_rotated_at) == (new_hash, NOW + 5)
    [event] = await store.events_after(0)
    assert (event.kind, event.client_id, event.token_hash, event.occurred_at) == (
        EventKind.SECRET_ROTATED,
        "tgc_a",
        None,
        NOW + 5,
    )


async def test_set_secret_of_unknown_client_is_false_and_silent(store: Store) -> None:
    """Rotating an unknown client's secret returns False and emits nothing."""
    assert await store.set_client_secret("tgc_nobody", "0" * 64, NOW) is False
    assert await store.last_position() == 0


async def test_disable_client_revokes_its_live_tokens_and_emits(store: Store) -> None:
    """Disabling marks the client, revokes its unrevoked tokens only, emits CLIENT_DISABLED."""
    await store.add_client(make_client("tgc_a"))
    await store.add_client(make_client("tgc_b"))
    live, earlier, other = make_token("tgc_a"), make_token("tgc_a"), make_token("tgc_b")
    for token in (live, earlier, other):
        await store.add_token(token)
    assert await store.revoke_token(earlier.token_hash, NOW + 1) is True

    assert await store.disable_client("tgc_a", NOW + 9) is True

    client = await store.get_client("tgc_a")
    assert client is not None
    assert client.disabled is True
    assert await store.get_token(live.token_hash) == dataclasses.replace(live, revoked_at=NOW + 9)
    kept = await store.get_token(earlier.token_hash)
    assert kept is not None
    assert kept.revoked_at == NOW + 1
    assert await store.get_token(other.token_hash) == other
    assert await kinds(store) == [EventKind.TOKEN_REVOKED, EventKind.CLIENT_DISABLED]


async def test_disable_unknown_client_is_false_and_silent(store: Store) -> None:
    """Disabling an unknown client returns False and emits nothing."""
    assert await store.disable_client("tgc_nobody", NOW) is False
    assert await store.last_position() == 0


async def test_delete_client_removes_it_and_its_tokens_and_emits(store: Store) -> None:
    """Deleting drops the client and its tokens (others stay) and emits CLIENT_DELETED."""
    await store.add_client(make_client("tgc_a"))
    await store.add_client(make_client("tgc_b"))
    mine, other = make_token("tgc_a"), make_token("tgc_b")
    await store.add_token(mine)
    await store.add_token(other)

    assert await store.delete_client("tgc_a", NOW + 3) is True

    assert await store.get_client("tgc_a") is None
    assert await store.get_token(mine.token_hash) is None
    assert await store.get_token(other.token_hash) == other
    [event] = await store.events_after(0)
    assert (event.kind, event.client_id, event.occurred_at) == (
        EventKind.CLIENT_DELETED,
        "tgc_a",
        NOW + 3,
    )


async def test_delete_unknown_client_is_false_and_silent(store: Store) -> None:
    """Deleting an unknown client returns False and emits nothing."""
    assert await store.delete_client("tgc_nobody", NOW) is False
    assert await store.last_position() == 0


# -- tokens ---------------------------------------------------------------------------------


async def test_add_then_get_token_round_trips_every_field(store: Store) -> None:
    """A stored token comes back equal, looked up by its hash."""
    token = make_token()
    await store.add_token(token)
    assert await store.get_token(token.token_hash) == token


async def test_get_unknown_token_is_none(store: Store) -> None:
    """Looking up a hash never stored gives None."""
    assert await store.get_token(hash_value(new_access_token())) is None


async def test_revoke_token_succeeds_once_and_emits_token_revoked(store: Store) -> None:
    """The first revocation returns True and emits; a second returns False and emits nothing."""
    token = make_token()
    await store.add_token(token)
    assert await store.revoke_token(token.token_hash, NOW + 7) is True
    assert await store.revoke_token(token.token_hash, NOW + 8) is False
    assert await store.get_token(token.token_hash) == dataclasses.replace(token, revoked_at=NOW + 7)
    [event] = await store.events_after(0)
    assert (event.kind, event.client_id, event.token_hash, event.occurred_at) == (
        EventKind.TOKEN_REVOKED,
        token.client_id,
        token.token_hash,
        NOW + 7,
    )


async def test_revoke_unknown_token_is_false_and_silent(store: Store) -> None:
    """Revoking a hash never stored returns False and emits nothing (RFC 7009 §2.2)."""
    assert await store.revoke_token(hash_value(new_access_token()), NOW) is False
    assert await store.last_position() == 0


async def test_purge_expired_deletes_tokens_expired_at_or_before(store: Store) -> None:
    """purge_expired drops tokens with expires_at <= before, counts them, and emits nothing."""
    gone = [make_token(ttl=10), make_token(ttl=20)]
    kept = make_token(ttl=21)
    for token in (*gone, kept):
        await store.add_token(token)
    assert await store.purge_expired(NOW + 20) == 2
    assert [await store.get_token(t.token_hash) for t in gone] == [None, None]
    assert await store.get_token(kept.token_hash) == kept
    assert await store.purge_expired(NOW + 20) == 0
    assert await store.last_position() == 0


@pytest.mark.parametrize(
    "ttls", [pytest.param([1] * 10, id="ties"), pytest.param(list(range(1, 11)), id="spread")]
)
async def test_purge_expired_works_through_many_batches(store: Store, ttls: list[int]) -> None:
    """A purge larger than one batch removes every expired token, ties of expires_at included,
    and only those."""
    for ttl in ttls:
        await store.add_token(make_token(ttl=ttl))
    kept = make_token(ttl=100)
    await store.add_token(kept)
    assert await store.purge_expired(NOW + 10, pace=PurgePace(batch=3, pause=0)) == 10
    assert await store.get_token(kept.token_hash) == kept
    assert await store.purge_expired(NOW + 10, pace=PurgePace(batch=3, pause=0)) == 0


async def test_one_purge_at_a_time(make_durable: MakeStore) -> None:
    """Two stores (two replicas) on one database: while one purges, the other's purge raises
    PurgeInProgress at once; afterwards it may purge again."""
    async with opened(make_durable) as first, opened(make_durable) as second:
        for _ in range(3):
            await first.add_token(make_token(ttl=1))
        slow = asyncio.create_task(first.purge_expired(NOW + 1, pace=PurgePace(batch=1, pause=0.3)))
        await asyncio.sleep(0.1)  # the first batch is done, the pause holds the lock
        with pytest.raises(PurgeInProgress):
            await second.purge_expired(NOW + 1)
        assert await asyncio.wait_for(slow, 5) == 3
        assert await second.purge_expired(NOW + 1) == 0


async def test_concurrent_add_token_all_stored(store: Store) -> None:
    """200 concurrent add_token calls all return and are all readable."""
    tokens = [make_token() for _ in range(200)]
    await asyncio.gather(*(store.add_token(t) for t in tokens))
    assert await asyncio.gather(*(store.get_token(t.token_hash) for t in tokens)) == tokens


async def test_back_to_back_calls_from_many_tasks_all_complete(store: Store) -> None:
    """64 tasks each issuing 20 add/get pairs back to back all finish (no call is stranded)."""

    async def worker() -> None:
        for _ in range(20):
            token = make_token()
            await store.add_token(token)
            assert await store.get_token(token.token_hash) == token

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(64))), timeout=60)


async def test_rejected_write_fails_alone_among_concurrent_ones(store: Store) -> None:
    """A duplicate client id fails only its own call, not the writes made beside it."""
    await store.add_client(make_client("tgc_a"))
    tokens = [make_token() for _ in range(20)]
    results = await asyncio.gather(
        store.add_client(make_client("tgc_a")),
        *(store.add_token(t) for t in tokens),
        store.add_client(make_client("tgc_b")),
        return_exceptions=True,
    )
    assert isinstance(results[0], ValueError)
    assert results[1:] == [None] * 21
    assert await asyncio.gather(*(store.get_token(t.token_hash) for t in tokens)) == tokens
    assert await store.get_client("tgc_b") is not None


async def test_concurrent_lookups_return_each_callers_token(store: Store) -> None:
    """Concurrent get_token calls, hits and misses mixed, each get their own answer."""
    tokens = [make_token() for _ in range(50)]
    for token in tokens:
        await store.add_token(token)
    missing = [hash_value(new_access_token()) for _ in range(50)]
    hashes = [h for pair in zip([t.token_hash for t in tokens], missing, strict=True) for h in pair]
    found = await asyncio.gather(*(store.get_token(h) for h in hashes))
    assert found == [x for pair in zip(tokens, [None] * 50, strict=True) for x in pair]


# -- the event log ------------------------------------------------------------------------------


async def make_five_events(store: Store) -> None:
    """One event of each kind, plus a second revocation: five in all."""
    await store.add_client(make_client("tgc_a"))
    await store.add_client(make_client("tgc_b"))
    first, second = make_token("tgc_b"), make_token("tgc_b")
    await store.add_token(first)
    await store.add_token(second)
    await store.revoke_token(first.token_hash, NOW + 1)
    await store.set_client_secret("tgc_a", "0" * 64, NOW + 2)
    await store.revoke_token(second.token_hash, NOW + 3)
    await store.disable_client("tgc_b", NOW + 4)
    await store.delete_client("tgc_a", NOW + 5)


async def test_events_after_zero_replays_everything_in_order(store: Store) -> None:
    """events_after(0) returns every event, oldest first, positions strictly increasing."""
    await make_five_events(store)
    events = await store.events_after(0)
    assert [e.kind for e in events] == [
        EventKind.TOKEN_REVOKED,
        EventKind.SECRET_ROTATED,
        EventKind.TOKEN_REVOKED,
        EventKind.CLIENT_DISABLED,
        EventKind.CLIENT_DELETED,
    ]
    assert [e.occurred_at for e in events] == [NOW + 1, NOW + 2, NOW + 3, NOW + 4, NOW + 5]
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    assert positions[0] > 0


async def test_events_after_honours_limit_and_resumes_from_a_position(store: Store) -> None:
    """Reading in pages of two from each page's last position yields the full log once."""
    await make_five_events(store)
    everything = await store.events_after(0)
    pages, position = [], 0
    while page := await store.events_after(position, limit=2):
        assert len(page) <= 2
        pages.append(page)
        position = page[-1].position
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for p in pages for e in p] == everything
    assert await store.events_after(everything[2].position) == everything[3:]


async def test_last_position_is_zero_then_the_newest(store: Store) -> None:
    """last_position is 0 on an empty log, then the newest event's position."""
    assert await store.last_position() == 0
    await make_five_events(store)
    assert await store.last_position() == (await store.events_after(0))[-1].position
    assert await store.events_after(await store.last_position()) == []


# -- durability: SQLite and PostgreSQL only -------------------------------------------------------


async def test_concurrent_add_token_is_durable(make_durable: MakeStore) -> None:
    """Each of 200 concurrent add_token calls has committed when it returns: a new store sees it."""
    tokens = [make_token() for _ in range(200)]
    async with opened(make_durable) as store, opened(make_durable) as observer:
        await asyncio.gather(*(store.add_token(t) for t in tokens))
        found = await asyncio.gather(*(observer.get_token(t.token_hash) for t in tokens))
        assert found == tokens


async def test_everything_survives_close_and_reopen(make_durable: MakeStore) -> None:
    """Clients, tokens, revocations and the event log are all there after reopening."""
    token = make_token()
    async with opened(make_durable) as store:
        await make_five_events(store)
        await store.add_client(make_client("tgc_c"))
        await store.add_token(token)
        await store.revoke_token(token.token_hash, NOW + 6)
        clients, events = await store.list_clients(), await store.events_after(0)
    async with opened(make_durable) as store:
        assert await store.list_clients() == clients
        assert await store.events_after(0) == events
        assert await store.get_token(token.token_hash) == dataclasses.replace(
            token, revoked_at=NOW + 6
        )
        assert await store.last_position() == events[-1].position


async def test_close_commits_writes_already_queued(make_durable: MakeStore) -> None:
    """Writes started before close() complete and are durable when close() returns."""
    tokens = [make_token() for _ in range(50)]
    store = make_durable()
    await store.open()
    calls = [asyncio.ensure_future(store.add_token(t)) for t in tokens]
    await asyncio.sleep(0)  # let every call queue its write
    await store.close()
    assert all(call.done() and call.exception() is None for call in calls)
    async with opened(make_durable) as reopened:
        assert await asyncio.gather(*(reopened.get_token(t.token_hash) for t in tokens)) == tokens


async def test_stores_opening_one_new_database_at_once_all_work(make_durable: MakeStore) -> None:
    """Eight stores racing to create the schema on one empty database all open and agree."""
    stores = [make_durable() for _ in range(8)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        token = make_token()
        await stores[0].add_token(token)
        for other in stores[1:]:
            assert await other.get_token(token.token_hash) == token
        await stores[-1].revoke_token(token.token_hash, NOW)
        assert [e.kind for e in await stores[3].events_after(0)] == [EventKind.TOKEN_REVOKED]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_duplicate_token_is_rejected(make_durable: MakeStore) -> None:
    """Storing a token whose hash exists raises ValueError and keeps the first."""
    token = make_token()
    async with opened(make_durable) as store:
        await store.add_token(token)
        with pytest.raises(ValueError, match="already stored"):
            await store.add_token(dataclasses.replace(token, jti=new_jti()))
        assert await store.get_token(token.token_hash) == token


async def test_a_second_store_sees_revocations_at_once(make_durable: MakeStore) -> None:
    """A revocation made through one store is visible to another (another replica) at once."""
    token = make_token()
    async with opened(make_durable) as writer, opened(make_durable) as reader:
        await writer.add_token(token)
        assert await reader.get_token(token.token_hash) == token
        await writer.revoke_token(token.token_hash, NOW + 1)
        found = await reader.get_token(token.token_hash)
        assert found is not None
        assert found.revoked_at == NOW + 1
        assert await reader.last_position() == await writer.last_position()


# -- issuing against the client's current state -------------------------------------------


@pytest.mark.parametrize("change", ["none", "disabled", "deleted", "rotated", "unknown"])
async def test_guarded_add_token_checks_the_client_atomically(store: Store, change: str) -> None:
    """With secret_hash, a token is stored only for an enabled client with that secret."""
    client = make_client()
    await store.add_client(client)
    if change == "disabled":
        await store.disable_client(client.client_id, NOW)
    elif change == "deleted":
        await store.delete_client(client.client_id, NOW)
    elif change == "rotated":
        await store.set_client_secret(client.client_id, hash_value(new_client_secret()), NOW)
    token = make_token("tgc_nobody" if change == "unknown" else client.client_id)
    if change == "none":
        await store.add_token(token, secret_hash=client.secret_hash)
        assert await store.get_token(token.token_hash) == token
        return
    with pytest.raises(StaleClient):
        await store.add_token(token, secret_hash=client.secret_hash)
    assert await store.get_token(token.token_hash) is None


async def test_guarded_batch_fails_only_the_stale_tokens(store: Store) -> None:
    """Concurrent guarded inserts for a live and a disabled client succeed or fail alone."""
    live, gone = make_client("tgc_live"), make_client("tgc_gone")
    await store.add_client(live)
    await store.add_client(gone)
    await store.disable_client(gone.client_id, NOW)
    tokens = [make_token(live.client_id if i % 2 else gone.client_id) for i in range(20)]
    results = await asyncio.gather(
        *(store.add_token(t, secret_hash=(live if i % 2 else gone).secret_hash)
          for i, t in enumerate(tokens)),
        return_exceptions=True,
    )  # fmt: skip
    for i, (token, result) in enumerate(zip(tokens, results, strict=True)):
        if i % 2:
            assert result is None
            assert await store.get_token(token.token_hash) == token
        else:
            assert isinstance(result, StaleClient)


# -- client assertion replay (RFC 7523 §3 item 7) -------------------------------------------


async def test_assertion_is_usable_once(store: Store) -> None:
    """The first use of a replay key is recorded; every later one is a replay."""
    key = replay_key("tgc_a", "jti-1")
    assert await store.use_assertion(key, NOW + 60) is True
    assert await store.use_assertion(key, NOW + 60) is False
    assert await store.use_assertion(replay_key("tgc_b", "jti-1"), NOW + 60) is True


async def test_concurrent_uses_of_one_assertion_admit_one(store: Store) -> None:
    """Of many simultaneous uses of one key (one group commit, one batch), exactly one wins."""
    key = replay_key("tgc_a", "jti-race")
    results = await asyncio.gather(*(store.use_assertion(key, NOW + 60) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_replicas_share_the_replay_store(make_durable: MakeStore) -> None:
    """Two stores on one database (two replicas) racing with one assertion: one wins."""
    key = replay_key("tgc_a", "jti-replicas")
    async with opened(make_durable) as one, opened(make_durable) as two:
        results = await asyncio.gather(
            *(s.use_assertion(key, NOW + 60) for s in (one, two, one, two))
        )
        assert sorted(results) == [False, False, False, True]
        assert await two.use_assertion(key, NOW + 60) is False


async def test_purge_forgets_only_expired_assertions(store: Store) -> None:
    """Entries are kept until their expiry, then purged; a purged key is usable again."""
    old, live = replay_key("tgc_a", "old"), replay_key("tgc_a", "live")
    await store.use_assertion(old, NOW)
    await store.use_assertion(live, NOW + 300)
    assert await store.purge_assertions(NOW) == 1
    assert await store.use_assertion(live, NOW + 300) is False
    assert await store.use_assertion(old, NOW + 60) is True
    assert await store.purge_assertions(NOW) == 0


# -- shared secrets (the DPoP nonce key, RFC 9449 §8) ----------------------------------------


async def test_shared_secret_keeps_the_first_value(store: Store) -> None:
    """The first candidate stored under a name is what every later call gets."""
    assert await store.shared_secret("dpop_nonce", "first", NOW) == "first"
    assert await store.shared_secret("dpop_nonce", "second", NOW + 1) == "first"
    assert await store.shared_secret("other", "third", NOW) == "third"


async def test_replicas_agree_on_a_shared_secret(make_durable: MakeStore) -> None:
    """Two stores on one database racing to create a secret all get one value, after reopen too."""
    async with opened(make_durable) as one, opened(make_durable) as two:
        values = await asyncio.gather(
            *(s.shared_secret("dpop_nonce", f"c{i}", NOW) for i, s in enumerate((one, two) * 3))
        )
        assert len(set(values)) == 1
    async with opened(make_durable) as again:
        assert await again.shared_secret("dpop_nonce", "late", NOW) == values[0]
