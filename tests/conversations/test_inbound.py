"""Inbound messages: idempotent, one open dialog per customer even under racing sends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

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
