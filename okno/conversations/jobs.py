"""Background work on conversations: closing dialogs the customer walked away from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import actions, service
from okno.conversations.messaging import add_message
from okno.conversations.models import Conversation
from okno.db.base import utcnow
from okno.jobs.service import HOUSEKEEPING, enqueue
from okno.jobs.worker import JobContext

AUTOCLOSE_TEXT = (
    "Диалог закрыт, потому что мы давно не получали от вас ответа. "
    "Если вопрос остался — просто напишите, мы продолжим."
)
SWEEP_BATCH = 500


async def autoclose_sweep(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Find open dialogs where staff spoke last and the customer went silent; close each
    in its own job, so one failure does not hold back the rest."""
    minutes = ctx.settings.autoclose_after_minutes
    if minutes <= 0:
        return
    cutoff = utcnow() - timedelta(minutes=minutes)
    rows = await session.execute(
        select(Conversation.id, Conversation.last_message_at)
        .where(
            Conversation.status.in_((*service.OPEN_STATUSES, "bot")),
            Conversation.last_author_kind.in_(("operator", "bot")),
            Conversation.last_message_at < cutoff,
        )
        .limit(SWEEP_BATCH)
    )
    for conversation_id, last_at in rows:
        stamp = last_at.isoformat() if last_at else ""
        await enqueue(
            session,
            kind="conversations.autoclose",
            payload={"conversation_id": conversation_id, "last_message_at": stamp},
            priority=HOUSEKEEPING,
            dedup_key=f"autoclose:{conversation_id}:{stamp}",
        )


async def autoclose_one(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Close one silent dialog, unless someone wrote since the sweep looked at it."""
    conversation = await session.get(
        Conversation, int(payload["conversation_id"]), with_for_update=True
    )
    if conversation is None or conversation.status == "closed":
        return
    stamp = conversation.last_message_at.isoformat() if conversation.last_message_at else ""
    if stamp != payload.get("last_message_at"):
        return
    # a dialog the bot answered and the customer left without asking for a person is one
    # the bot closed on its own (what the bot's share in reports counts)
    resolution = "bot" if conversation.status == "bot" else "inactive"
    await add_message(session, conversation, author_kind="system", text=AUTOCLOSE_TEXT)
    await actions.close(session, conversation_id=conversation.id, actor=None, resolution=resolution)
