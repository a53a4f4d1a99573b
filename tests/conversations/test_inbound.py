"""Inbound messages: idempotent, one open dialog per customer even under racing sends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from okno.channels.service import get_channel
from okno.conversations import inbound
from okno.conversations.jobs import AUTOCLOSE_TEXT
from okno.conversations.models import Conversation, Message
from okno.db.base import utcnow
from okno.db.session import Database
from okno.jobs.registry import default_registry
from okno.jobs.worker import Worker
from okno.settings import Settings
from tests import services
from tests.builders import Staff, make_message


async def count(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_racing_first_messages_of_one_customer_open_one_dialog(
    db: Database, staff: Staff, settings: Settings
) -> None:
    from okno.http import AppState, write

    state = AppState(settings=settings, db=db, bus=None, hub=None, metrics=None, signing_key="")  # type: ignore[arg-type]

    async def send(i: int) -> None:
        async def action(session):  # type: ignore[no-untyped-def]
            channel = await get_channel(session, staff.widget_id)
            return await inbound.receive(
                session,
                inbound.Inbound(
                    channel=channel,
                    external_customer_id="same-visitor",
                    text=f"m{i}",
                    client_msg_id=f"c{i}",
                ),
            )

        await write(state, action)

    await asyncio.gather(*(send(i) for i in range(10)))
    assert await count(db, Conversation) == 1
    assert await count(db, Message) == 10


async def test_racing_retries_of_one_message_store_it_once(
    db: Database, staff: Staff, settings: Settings
) -> None:
    from okno.http import AppState, write

    state = AppState(settings=settings, db=db, bus=None, hub=None, metrics=None, signing_key="")  # type: ignore[arg-type]

    async def send() -> int:
        async def action(session):  # type: ignore[no-untyped-def]
            channel = await get_channel(session, staff.widget_id)
            return await inbound.receive(
                session,
                inbound.Inbound(
                    channel=channel,
                    external_customer_id="v",
                    text="Один раз",
                    client_msg_id="retry",
                ),
            )

        message, _ = await write(state, action)
        return message.id

    ids = await asyncio.gather(*(send() for _ in range(8)))
    assert len(set(ids)) == 1
    assert await count(db, Message) == 1


async def test_silent_customer_dialog_is_closed_by_the_autoclose_jobs(
    db: Database, staff: Staff, settings: Settings
) -> None:
    async with db.transaction() as session:
        message = await make_message(session, channel_id=staff.widget_id)
    async with db.transaction() as session:  # an operator answered 2 hours ago, then silence
        await session.execute(
            update(Conversation).values(
                last_author_kind="operator",
                last_message_at=utcnow() - timedelta(hours=2),
                status="assigned",
            )
        )
    worker = Worker(db, settings, default_registry())
    await worker.schedule_periodic()
    await worker.drain()
    async with db.read() as session:
        conv = await session.get(Conversation, message.conversation_id)
        texts = (await session.scalars(select(Message.text).order_by(Message.id))).all()
    assert conv is not None and conv.status == "closed" and conv.resolution == "inactive"
    assert texts[-1] == AUTOCLOSE_TEXT


async def test_dialog_where_customer_spoke_last_is_not_autoclosed(
    db: Database, staff: Staff, settings: Settings
) -> None:
    async with db.transaction() as session:
        message = await make_message(session, channel_id=staff.widget_id)
    async with db.transaction() as session:
        await session.execute(
            update(Conversation).values(last_message_at=utcnow() - timedelta(hours=5))
        )
    worker = Worker(db, settings, default_registry())
    await worker.schedule_periodic()
    await worker.drain()
    async with db.read() as session:
        conv = await session.get(Conversation, message.conversation_id)
    assert conv is not None and conv.status == "waiting"


@pytest.mark.postgres_only
@pytest.mark.skipif(
    services.DB_BACKEND != "postgres",
    reason="SQLite writers take turns, so a close cannot commit during an inbound write",
)
@pytest.mark.parametrize("staff_action", ["close", "transfer"])
async def test_message_racing_a_close_or_transfer_lands_where_staff_will_see_it(
    db: Database, staff: Staff, monkeypatch: pytest.MonkeyPatch, staff_action: str
) -> None:
    """The customer's write reads the open dialog, then a close (or a transfer) commits
    before it continues: the message must open a new dialog (or reach the new assignee)."""
    from okno.conversations import actions
    from okno.conversations import service as conversation_service
    from okno.events.models import Event
    from tests.builders import get_user

    async with db.transaction() as session:
        first = await make_message(session, channel_id=staff.widget_id, visitor="racer")
    async with db.transaction() as session:
        anna = await get_user(session, staff["anna"])
        await actions.post_message(
            session,
            conversation_id=first.conversation_id,
            actor=anna,
            text="Здравствуйте",
            client_msg_id="a1",
        )
    read_done, may_continue = asyncio.Event(), asyncio.Event()
    original = conversation_service.customer_and_open_dialog

    async def paused(session, **kw):  # type: ignore[no-untyped-def]
        found = await original(session, **kw)
        read_done.set()
        await may_continue.wait()
        return found

    monkeypatch.setattr(conversation_service, "customer_and_open_dialog", paused)

    async def customer() -> Message:
        async with db.transaction() as session:
            channel = await get_channel(session, staff.widget_id)
            message, _ = await inbound.receive(
                session,
                inbound.Inbound(
                    channel=channel,
                    external_customer_id="racer",
                    text="Ещё вопрос",
                    client_msg_id="c2",
                ),
            )
            return message

    async def operator() -> None:
        await read_done.wait()
        monkeypatch.setattr(conversation_service, "customer_and_open_dialog", original)
        async with db.transaction() as session:
            anna = await get_user(session, staff["anna"])
            if staff_action == "close":
                await actions.close(
                    session,
                    conversation_id=first.conversation_id,
                    actor=anna,
                    resolution="resolved",
                )
            else:
                await actions.transfer(
                    session,
                    conversation_id=first.conversation_id,
                    actor=anna,
                    to_user_id=staff["igor"],
                    to_team_id=None,
                    comment=None,
                )
        may_continue.set()

    message, _ = await asyncio.gather(customer(), operator())
    async with db.read() as session:
        conversation = await session.get(Conversation, message.conversation_id)
        event = await session.scalar(select(Event).where(Event.seq == message.seq))
    assert conversation is not None and event is not None
    if staff_action == "close":
        assert message.conversation_id != first.conversation_id
        assert conversation.status == "waiting"
    else:
        assert message.conversation_id == first.conversation_id
        assert event.assignee_id == staff["igor"]
