"""Single-flight: one call for N concurrent lookups of a key (threads: see the WSGI tests)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from tokengate.resource.runtime.singleflight import SingleFlight
from tokengate.resource.runtime.stats import Counter


@pytest.mark.anyio
async def test_thousand_concurrent_lookups_make_one_call() -> None:
    """1,000 concurrent callers of one key share a single call and its result."""
    joins = Counter()
    flight = SingleFlight[str](joins)
    calls = 0
    release = anyio.Event()
    results: list[str] = []

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    async def caller() -> None:
        results.append(await flight.do("key", fetch))

    async with anyio.create_task_group() as group:
        for _ in range(1000):
            group.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == 1
    assert results == ["answer"] * 1000
    assert joins.value == 999
    assert flight.in_flight() == 0


@pytest.mark.anyio
async def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    """All waiters get the leader's error; the next caller tries again."""
    flight = SingleFlight[str]()
    calls = 0
    release = anyio.Event()
    errors: list[BaseException] = []

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise LookupError("upstream down")

    async def caller() -> None:
        try:
            await flight.do("key", failing)
        except LookupError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == 1
    assert len(errors) == 10

    async def working() -> str:
        return "ok"

    assert await flight.do("key", working) == "ok"


@pytest.mark.anyio
async def test_different_keys_do_not_share() -> None:
    """Only the same key is deduplicated."""
    flight = SingleFlight[int]()
    seen: list[str] = []

    async def fetch_for(key: str) -> int:
        seen.append(key)
        await anyio.lowlevel.checkpoint()
        return len(key)

    async with anyio.create_task_group() as group:
        for key in ("a", "bb", "a"):
            group.start_soon(flight.do, key, lambda key=key: fetch_for(key))
    assert sorted(seen) == ["a", "bb"]


@pytest.mark.anyio
async def test_cancelled_leader_hands_over_to_a_waiter() -> None:
    """If the leader's caller goes away, a waiter runs the call instead of failing."""
    flight = SingleFlight[str]()
    calls = 0
    started = anyio.Event()

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await anyio.sleep_forever()
        return "second"

    result: list[str] = []

    async def waiter() -> None:
        result.append(await flight.do("key", fetch))

    async with anyio.create_task_group() as outer, anyio.create_task_group() as leader_group:
        leader_group.start_soon(flight.do, "key", fetch)
        await started.wait()
        outer.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        leader_group.cancel_scope.cancel()
    assert result == ["second"]
    assert calls == 2
