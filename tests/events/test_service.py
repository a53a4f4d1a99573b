"""Event numbering: contiguous, in commit order, stamped on messages, pruned with a clear error."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import Gone
from okno.events.models import Event
from okno.events.service import PendingEvent, events_after, last_seq, prune_events, record_event
from okno.events.visibility import StaffViewer
from tests.builders import Staff, make_message

ADMIN = StaffViewer(user_id=0, role="admin", team_id=None)


async def test_message_carries_the_seq_of_its_event(db: Database, staff: Staff) -> None:
    async with db.transaction() as session:
        message = await make_message(session, channel_id=staff.widget_id)
    async with db.read() as session:
        events = await events_after(session, viewer=ADMIN, after_seq=0)
    assert [e["type"] for e in events] == ["conversation.created", "message.created"]
    assert events[1]["seq"] == message.seq == events[1]["payload"]["message"]["seq"]


async def test_rolled_back_transaction_leaves_no_event_and_no_gap(
    db: Database, staff: Staff
) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await make_message(session, channel_id=staff.widget_id)
            raise RuntimeError("boom")
    async with db.transaction() as session:
        await make_message(session, channel_id=staff.widget_id, visitor="second")
    async with db.read() as session:
        seqs = [e["seq"] for e in await events_after(session, viewer=ADMIN, after_seq=0)]
    assert seqs == [1, 2]


async def test_concurrent_writers_get_contiguous_unique_seqs(db: Database, staff: Staff) -> None:
    async def one(i: int) -> None:
        async with db.transaction() as session:
            await make_message(session, channel_id=staff.widget_id, visitor=f"v{i}")

    await asyncio.gather(*(one(i) for i in range(20)))
    async with db.read() as session:
        seqs = [e["seq"] for e in await events_after(session, viewer=ADMIN, after_seq=0)]
        assert await last_seq(session) == 40
    assert seqs == list(range(1, 41))


async def test_events_before_the_pruned_point_answer_gone(db: Database) -> None:
    async with db.transaction() as session:
        for i in range(3):
            record_event(
                session, PendingEvent(type="test.happened", conversation_id=None, payload={"i": i})
            )
    async with db.transaction() as session:
        await session.execute(
            update(Event).where(Event.seq <= 2).values(created_at=utcnow() - timedelta(days=30))
        )
        assert await prune_events(session, older_than_days=7) == 2
    async with db.read() as session:
        with pytest.raises(Gone) as err:
            await events_after(session, viewer=ADMIN, after_seq=0)
        assert err.value.code == "events_pruned"
        assert [e["seq"] for e in await events_after(session, viewer=ADMIN, after_seq=2)] == [3]
        assert (await session.scalars(select(Event.seq))).all() == [3]
