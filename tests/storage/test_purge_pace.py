"""A purge's pace (`storage.purge.paced`): batches until a short one, each followed by a rest of
at least `pause` and at least `idle_ratio` times the batch's own duration."""

from __future__ import annotations

import pytest

from tokengate.storage.base import PurgePace
from tokengate.storage.purge import FIRST, paced

pytestmark = pytest.mark.anyio


class Timeline:
    """A fake clock the batches advance, and the rests asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.rests: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.rests.append(seconds)
        self.now += seconds


async def _run(durations: list[float], pace: PurgePace) -> tuple[int, Timeline, list[int]]:
    """Batches taking `durations` seconds each, full but the last."""
    timeline, cursors = Timeline(), []

    async def batch(cursor: int) -> tuple[int, int]:
        cursors.append(cursor)
        timeline.now += durations[len(cursors) - 1]
        full = len(cursors) < len(durations)
        return (pace.batch if full else pace.batch - 1), cursor + 10

    total = await paced(batch, pace, clock=timeline.clock, sleep=timeline.sleep)
    return total, timeline, cursors


async def test_a_slow_batch_rests_in_proportion() -> None:
    """An 80 ms batch (SQLite) rests 240 ms at ratio 3; an 11 ms one (PostgreSQL) the 50 ms
    floor; the purge is busy at most a quarter of the time whatever the batch costs."""
    pace = PurgePace(batch=500, pause=0.05, idle_ratio=3.0)
    total, timeline, cursors = await _run([0.08, 0.011, 0.2], pace)
    assert timeline.rests == pytest.approx([0.24, 0.05])
    assert total == 500 + 500 + 499
    assert cursors == [FIRST, FIRST + 10, FIRST + 20]  # each batch starts where the last ended
    rested = 0.08 + 0.011  # the batches followed by a rest (the last one ends the purge)
    assert rested / (rested + sum(timeline.rests)) <= 1 / (1 + pace.idle_ratio)


async def test_a_short_first_batch_ends_the_purge_without_a_rest() -> None:
    """Nothing (or less than a batch) to delete: one batch, no rest."""
    total, timeline, _ = await _run([0.5], PurgePace())
    assert (total, timeline.rests) == (499, [])


async def test_ratio_zero_keeps_the_fixed_pause() -> None:
    """`idle_ratio=0` is the fixed pause alone."""
    _, timeline, _ = await _run([1.0, 1.0, 0.1], PurgePace(pause=0.05, idle_ratio=0))
    assert timeline.rests == [0.05, 0.05]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"batch": 0}, id="batch-zero"),
        pytest.param({"pause": -0.1}, id="pause-negative"),
        pytest.param({"pause": float("nan")}, id="pause-nan"),
        pytest.param({"pause": float("inf")}, id="pause-inf"),
        pytest.param({"idle_ratio": float("nan")}, id="ratio-nan"),
        pytest.param({"idle_ratio": -1.0}, id="ratio-negative"),
    ],
)
def test_a_pace_that_could_not_rest_is_refused(fields: dict[str, float]) -> None:
    """No pace is built that would never rest, rest forever, or delete nothing per batch."""
    with pytest.raises(ValueError, match="purge pace"):
        PurgePace(**fields)  # type: ignore[arg-type]
