"""Helpers of the routing tests: dialogs arrive through the real inbound path, operators
come online by their presence rows, dispatch passes run with an explicit ``now``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from okno.channels import service as channels
from okno.conversations import actions, inbound
from okno.conversations.models import Conversation, Message
from okno.customers.models import Customer
from okno.db.base import utcnow
from okno.db.session import Database
from okno.operators.models import Presence, User
from okno.routing import service
from okno.routing.models import Assignment, Queue
from okno.routing.service import Decision
from okno.settings import Settings
from tests import services
from tests.builders import cmid

T = TypeVar("T")


async def arrive(
    db: Database,
    channel_id: int,
    visitor: str,
    *,
    text: str = "Здравствуйте, вопрос",
    topic: str | None = None,
    tags: list[str] | None = None,
) -> int:
    """A customer writes a first message (a new dialog); ``topic`` as the bot would set
    it, ``tags`` on the customer. Returns the dialog's id."""
    async with db.transaction() as session:
        channel = await channels.get_channel(session, channel_id)
        assert channel is not None
        message, _ = await inbound.receive(
            session,
            inbound.Inbound(
                channel=channel, external_customer_id=visitor, text=text, client_msg_id=cmid()
            ),
        )
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
        if topic is not None:
            conversation.topic = topic
        if tags is not None:
            customer = await session.get(Customer, conversation.customer_id)
            assert customer is not None
            customer.tags = tags
        return conversation.id


async def operator(
    db: Database,
    user_id: int,
    *,
    now: datetime,
    status: str = "online",
    since: datetime | None = None,
    last_seen_at: datetime | None = None,
    capacity: int | None = None,
    skills: dict[str, int] | None = None,
    last_assigned_at: datetime | None = None,
) -> None:
    """Set a staff member's presence (connected as of ``last_seen_at``, default ``now``)
    and, when given, their capacity and skills."""
    async with db.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        if capacity is not None:
            user.capacity = capacity
        if skills is not None:
            user.skills = skills
        row = await session.get(Presence, user_id)
        if row is None:
            row = Presence(user_id=user_id)
            session.add(row)
        row.status = status
        row.since = since or now
        row.last_seen_at = last_seen_at or now
        if last_assigned_at is not None:
            row.last_assigned_at = last_assigned_at


async def seen(db: Database, now: datetime, *user_ids: int) -> None:
    """The heartbeat: these operators' workspaces were seen connected at ``now``."""
    async with db.transaction() as session:
        for user_id in user_ids:
            row = await session.get(Presence, user_id)
            assert row is not None
            row.last_seen_at = now


async def dispatch(db: Database, now: datetime) -> list[Decision]:
    async with db.transaction() as session:
        return await service.dispatch(session, now=now)


async def requeue(db: Database, *, grace_seconds: int, now: datetime) -> list[int]:
    async with db.transaction() as session:
        return await service.requeue_abandoned(session, grace_seconds=grace_seconds, now=now)


async def close(db: Database, conversation_id: int) -> None:
    async with db.transaction() as session:
        await actions.close(
            session, conversation_id=conversation_id, actor=None, resolution="resolved"
        )


async def make_queue(db: Database, **values: Any) -> int:
    async with db.transaction() as session:
        queue = await service.save_queue(session, None, values)
        return queue.id


async def switch_off(db: Database, queue_id: int) -> None:
    """What the admin's PATCH ``{"is_active": false}`` does."""
    async with db.transaction() as session:
        queue = await service.get_queue(session, queue_id)
        await service.save_queue(session, queue, {"is_active": False})


async def add_channel(db: Database, key: str, **config: Any) -> int:
    """A second widget entry point with routing overrides in its config."""
    async with db.transaction() as session:
        channel = await channels.add_widget(session, key=key, name=key, **config)
        return channel.id


async def dialog(db: Database, conversation_id: int) -> Conversation:
    async with db.read() as session:
        found = await session.get(Conversation, conversation_id)
        assert found is not None
        return found


async def assignee(db: Database, conversation_id: int) -> int | None:
    return (await dialog(db, conversation_id)).assignee_id


async def arrived_at(db: Database, conversation_id: int) -> datetime:
    """When the customer started waiting (what waits and deadlines count from)."""
    found = await dialog(db, conversation_id)
    assert found.awaiting_since is not None
    return found.awaiting_since


async def loads(db: Database) -> dict[int, int]:
    """Open assigned dialogs per operator."""
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(Conversation.assignee_id).where(Conversation.status == "assigned")
            )
        ).all()
    out: dict[int, int] = {}
    for user_id in rows:
        if user_id is not None:
            out[user_id] = out.get(user_id, 0) + 1
    return out


async def messages(db: Database, conversation_id: int) -> list[Message]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(Message)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(Message.id)
                )
            ).all()
        )


async def assignments(db: Database, conversation_id: int) -> list[Assignment]:
    async with db.read() as session:
        return await service.assignments_of(session, conversation_id)


async def queue_row(db: Database, queue_id: int) -> Queue:
    async with db.read() as session:
        return await service.get_queue(session, queue_id)


def later(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)


def clock() -> datetime:
    return utcnow()


def run(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``fn(db)`` on the test database from a synchronous (TestClient) test."""

    async def go() -> T:
        database = Database(settings)
        try:
            return await fn(database)
        finally:
            await database.dispose()

    result: T = services.run_in_thread(go)
    return result
