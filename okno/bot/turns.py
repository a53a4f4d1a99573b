"""The record of what the bot decided (one row per turn): the learning loop and the bot
metrics read it, nothing on the customer's path waits for it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import BotTurn
from okno.bot.service import BotDecision
from okno.db.base import utcnow

TEXT_KEPT = 2000  # enough to group and read a question; a pasted letter is cut


async def record(
    session: AsyncSession,
    decision: BotDecision,
    *,
    text: str,
    channel_kind: str | None,
    conversation_id: int | None = None,
    message_id: int | None = None,
    suggested: bool = False,
    picked: bool = False,
    flow_id: str | None = None,
) -> BotTurn:
    turn = BotTurn(
        conversation_id=conversation_id,
        message_id=message_id,
        channel_kind=channel_kind,
        text=text[:TEXT_KEPT],
        decision="flow" if flow_id else decision.decision,
        reason=decision.reason,
        confidence=decision.confidence,
        article_id=decision.article_id,
        flow_id=flow_id,
        topic=decision.topic,
        suggested=suggested,
        picked=picked,
        at=utcnow(),
    )
    session.add(turn)
    return turn
