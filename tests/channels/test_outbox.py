"""The delivery outbox under contention: many workers racing over one dialog's messages
send each exactly once and in the order they were written (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from okno.channels import outbound
from okno.channels import service as channels
from okno.conversations.messaging import add_message
from okno.conversations.models import Conversation
from okno.db.session import Database
from okno.jobs.worker import JobContext
from okno.settings import Settings
from tests.builders import Staff, make_message
from tests.channels.fakes.telegram import TOKEN, FakeTelegram


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


async def test_racing_senders_deliver_each_message_once_and_in_order(
    db: Database, settings: Settings, staff: Staff, fake: FakeTelegram
) -> None:
    async with db.transaction() as session:
        channel = await channels.add_messenger(
            session,
            kind="telegram",
            values={"bot_token": TOKEN, "webhook_secret": "s", "api_base": fake.url},
            signing_key=settings.signing_key(),
        )
        channel_id = channel.id
    async with db.transaction() as session:
        first = await make_message(session, channel_id=channel_id, visitor="700001")
        conversation = await session.get(Conversation, first.conversation_id)
        assert conversation is not None
        ids = []
        for i in range(6):
            reply = await add_message(
                session,
                conversation,
                author_kind="operator",
                text=f"Ответ {i + 1}",
                author_user_id=staff["anna"],
            )
            ids.append(reply.id)
    ctx = JobContext(settings=settings, job_id=0, attempt=1)

    async def worker(message_id: int) -> None:
        # what the job runner does: run again after RetryLater until nothing is left
        for _ in range(200):
            try:
                await outbound.prepare_send(db, {"message_id": message_id}, ctx)
                return
            except outbound.RetryLater:
                await asyncio.sleep(0.05)

    # every message's job, twice over (a job re-run after a lost lease), all at once
    await asyncio.gather(*(worker(m) for m in [*ids, *reversed(ids)]))
    assert [s["text"] for s in fake.sent] == [f"Ответ {i + 1}" for i in range(6)]
    async with db.read() as session:
        statuses = await outbound.delivery_statuses(session, ids)
    assert set(statuses.values()) == {"sent"}
