"""Fairness between operators: equally loaded operators share the arrivals evenly, and the
queue's strategy decides between the least loaded and the longest idle."""

from __future__ import annotations

from datetime import timedelta

import pytest

from okno.db.session import Database
from tests.builders import Staff
from tests.routing.kit import (
    arrive,
    assignee,
    clock,
    close,
    dispatch,
    later,
    loads,
    make_queue,
    operator,
    seen,
)


async def test_equally_loaded_operators_split_dialogs_arriving_one_by_one_evenly(
    db: Database, staff: Staff
) -> None:
    start = clock()
    pair = (staff["anna"], staff["igor"])
    for user_id in pair:
        await operator(db, user_id, now=start, capacity=5)
    served: dict[int, int] = {user_id: 0 for user_id in pair}
    for i in range(10):
        now = later(start, 10 * (i + 1))
        await seen(db, now, *pair)
        conversation_id = await arrive(db, staff.widget_id, f"visitor-{i}")
        (decision,) = await dispatch(db, now)
        served[decision.user_id] += 1
        await close(db, conversation_id)  # both are free again before the next one
    assert served == {staff["anna"]: 5, staff["igor"]: 5}


@pytest.mark.parametrize(
    ("strategy", "winner"),
    [("least_loaded", "igor"), ("longest_idle", "anna")],
)
async def test_the_strategy_picks_the_least_loaded_or_the_longest_idle(
    db: Database, staff: Staff, strategy: str, winner: str
) -> None:
    """anna serves two dialogs but got her last one ten minutes ago; igor serves none but
    got (and finished) one ten seconds ago."""
    await make_queue(db, name="Общая", is_default=True, strategy=strategy)
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=5)
    for i in range(2):
        await arrive(db, staff.widget_id, f"earlier-{i}")
    await dispatch(db, start)
    assert await loads(db) == {staff["anna"]: 2}

    now = later(start, 1)
    await operator(
        db, staff["anna"], now=now, capacity=5, last_assigned_at=now - timedelta(minutes=10)
    )
    await operator(
        db, staff["igor"], now=now, capacity=5, last_assigned_at=now - timedelta(seconds=10)
    )
    newcomer = await arrive(db, staff.widget_id, "newcomer")
    (decision,) = await dispatch(db, now)
    assert decision.strategy == strategy
    assert await assignee(db, newcomer) == staff[winner]
