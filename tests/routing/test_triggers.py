"""What starts a dispatch pass: a new dialog, a freed place, an operator coming online —
and the watchdog, which also takes dialogs back from operators who left."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from okno.conversations import actions
from okno.db.session import Database
from okno.jobs.models import Job
from okno.jobs.registry import default_registry
from okno.jobs.worker import Worker
from okno.operators import presence
from okno.routing.jobs import WATCHDOG
from okno.routing.triggers import DISPATCH
from okno.settings import Settings
from tests.builders import Staff, get_user
from tests.routing.kit import arrive, assignee, assignments, clock, dispatch, operator


async def passes_asked(db: Database) -> int:
    """Dispatch passes waiting to run; forgets them, so the next step starts from zero."""
    async with db.transaction() as session:
        n = await session.scalar(
            select(func.count()).where(Job.kind == DISPATCH, Job.status == "pending")
        )
        await session.execute(delete(Job))
    return int(n or 0)


async def test_a_new_dialog_a_close_and_an_operator_coming_online_ask_for_a_pass(
    db: Database, staff: Staff
) -> None:
    conversation_id = await arrive(db, staff.widget_id, "v1")
    assert await passes_asked(db) == 1

    async with db.transaction() as session:
        await actions.close(
            session, conversation_id=conversation_id, actor=None, resolution="resolved"
        )
    assert await passes_asked(db) == 1

    async with db.transaction() as session:
        await presence.connected(session, user=await get_user(session, staff["anna"]))
    assert await passes_asked(db) == 1

    async with db.transaction() as session:
        await presence.set_status(
            session, user=await get_user(session, staff["anna"]), status="break"
        )
    assert await passes_asked(db) == 0  # a break frees nothing
    async with db.transaction() as session:
        await presence.set_status(
            session, user=await get_user(session, staff["anna"]), status="online"
        )
    assert await passes_asked(db) == 1


def test_the_watchdog_runs_every_five_seconds_in_the_routing_queue() -> None:
    (watchdog,) = [p for p in default_registry().periodic if p.kind == WATCHDOG]
    assert watchdog.every_seconds == 5 and watchdog.queue == "routing"


async def test_the_watchdog_hands_dialogs_of_an_operator_who_left_to_one_who_is_here(
    db: Database, staff: Staff, settings: Settings
) -> None:
    now = clock()
    await operator(db, staff["anna"], now=now)
    served = await arrive(db, staff.widget_id, "v1")
    await dispatch(db, now)
    assert await assignee(db, served) == staff["anna"]
    gone_for = timedelta(seconds=settings.routing_grace_seconds + 120)
    await operator(db, staff["anna"], now=now, last_seen_at=now - gone_for)
    await operator(db, staff["igor"], now=now)

    worker = Worker(db, settings, default_registry())
    await worker.schedule_periodic()
    await worker.drain()
    assert await assignee(db, served) == staff["igor"]
    assert [a.kind for a in await assignments(db, served)] == ["auto", "requeue", "auto"]
