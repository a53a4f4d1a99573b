"""An operator never gets more dialogs than their capacity, however many customers write
at the same moment and however many processes run dispatch passes at once."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels.service import get_channel
from okno.conversations import inbound
from okno.conversations.models import Conversation
from okno.db.session import Database
from okno.routing import service
from okno.routing.models import Assignment
from okno.settings import Settings
from tests.builders import Staff, cmid
from tests.routing.kit import arrive, clock, dispatch, loads, operator
from tests.routing.kit import dialog as dialog_row

OPERATORS = ("anna", "igor", "olga")
CAPACITY = 2
ARRIVALS = 30


async def _receive(session: AsyncSession, channel_id: int, visitor: str) -> None:
    channel = await get_channel(session, channel_id)
    assert channel is not None
    await inbound.receive(
        session,
        inbound.Inbound(
            channel=channel, external_customer_id=visitor, text="Помогите", client_msg_id=cmid()
        ),
    )


async def _count(db: Database, *where: ColumnElement[bool]) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).where(*where)) or 0)


@pytest.mark.parametrize("together", [True, False], ids=["one-transaction", "two-transactions"])
async def test_capacity_is_never_exceeded_under_concurrent_arrivals(
    db: Database, staff: Staff, settings: Settings, together: bool
) -> None:
    """30 customers write at once, each arrival followed by a dispatch pass — in the same
    transaction, or in its own — spread over three engines as over three processes."""
    start = clock()
    for login in OPERATORS:
        await operator(db, staff[login], now=start, capacity=CAPACITY)
    engines = [db, Database(settings), Database(settings)]

    async def customer(i: int) -> None:
        engine = engines[i % len(engines)]
        async with engine.transaction() as session:
            await _receive(session, staff.widget_id, f"rush-{i}")
            if together:
                await service.dispatch(session, now=clock())
        if not together:
            async with engine.transaction() as session:
                await service.dispatch(session, now=clock())

    try:
        await asyncio.gather(*(customer(i) for i in range(ARRIVALS)))
    finally:
        for engine in engines[1:]:
            await engine.dispose()

    per_operator = await loads(db)
    assert all(n <= CAPACITY for n in per_operator.values()), per_operator
    # and nobody stayed idle while customers waited: every place is taken
    assert per_operator == {staff[login]: CAPACITY for login in OPERATORS}
    assert await _count(db, Conversation.status == "waiting") == ARRIVALS - 3 * CAPACITY
    # one decision per assigned dialog: no pass overwrote another's choice
    assert await _count(db, Assignment.kind == "auto") == 3 * CAPACITY


@pytest.mark.postgres_only
async def test_a_second_pass_waits_for_the_first_one_to_commit(
    db: Database, staff: Staff, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass A has read who is free and stalls; pass B starts on another connection. B must
    not decide on the same free place before A commits (PostgreSQL advisory lock)."""
    for i in range(2):
        await arrive(db, staff.widget_id, f"pair-{i}")
    assert await dispatch(db, clock()) == []  # placed in the queue while nobody is online
    await operator(db, staff["anna"], now=clock(), capacity=1)
    read_free, may_continue = asyncio.Event(), asyncio.Event()
    original = service.available_operators

    async def stalled(session: AsyncSession, now: datetime) -> list[service.Candidate]:
        found = await original(session, now)
        if not read_free.is_set():
            read_free.set()
            await may_continue.wait()
        return found

    monkeypatch.setattr(service, "available_operators", stalled)
    other = Database(settings)

    async def pass_b() -> None:
        await read_free.wait()
        async with other.transaction() as session:
            await service.dispatch(session, now=clock())

    async def release() -> None:
        await read_free.wait()
        await asyncio.sleep(0.5)  # time enough for B to decide, were it not waiting
        may_continue.set()

    try:
        await asyncio.gather(dispatch(db, clock()), pass_b(), release())
    finally:
        await other.dispose()
    assert await loads(db) == {staff["anna"]: 1}


@pytest.mark.postgres_only
@pytest.mark.parametrize("staff_action", ["take", "close"])
async def test_a_dialog_taken_or_closed_while_a_pass_decides_is_not_given_away(
    db: Database, staff: Staff, monkeypatch: pytest.MonkeyPatch, staff_action: str
) -> None:
    """A pass has picked the waiting dialog and is about to hand it to anna; meanwhile igor
    takes it by hand (or a supervisor closes it). Whatever commits last must hold: igor
    keeps a take that succeeded (else he is told it is taken), and a closed dialog stays
    closed — a pass never overwrites a change it did not see."""
    from okno.conversations import actions
    from okno.errors import Conflict
    from tests.builders import get_user

    waiting = await arrive(db, staff.widget_id, "contested")
    assert await dispatch(db, clock()) == []  # placed while nobody is online
    await operator(db, staff["anna"], now=clock(), capacity=1)
    deciding, staff_done, may_continue = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_route_to = actions.route_to

    async def route_after_release(session: AsyncSession, c: Conversation, user_id: int) -> None:
        deciding.set()
        await may_continue.wait()
        await real_route_to(session, c, user_id)

    monkeypatch.setattr(actions, "route_to", route_after_release)
    other = Database(db.settings)

    async def staff_member() -> str:
        await deciding.wait()
        try:
            async with other.transaction() as session:
                if staff_action == "take":
                    igor = await get_user(session, staff["igor"])
                    await actions.assign(session, conversation_id=waiting, actor=igor, user_id=None)
                else:
                    sveta = await get_user(session, staff["sveta"])
                    await actions.close(
                        session, conversation_id=waiting, actor=sveta, resolution="resolved"
                    )
            return "done"
        except Conflict:
            return "refused"
        finally:
            staff_done.set()

    async def release() -> None:
        await deciding.wait()
        try:  # the staff action commits first, or waits for the pass's row lock
            await asyncio.wait_for(staff_done.wait(), timeout=1.0)
        except TimeoutError:
            pass
        may_continue.set()

    try:
        _, outcome, _ = await asyncio.wait_for(
            asyncio.gather(dispatch(db, clock()), staff_member(), release()), timeout=30
        )
    finally:
        may_continue.set()
        await other.dispose()
    after = await dialog_row(db, waiting)
    if staff_action == "close":
        assert outcome == "done" and after.status == "closed"
    elif outcome == "done":
        assert (after.status, after.assignee_id) == ("assigned", staff["igor"])
    else:
        assert (after.status, after.assignee_id) == ("assigned", staff["anna"])
