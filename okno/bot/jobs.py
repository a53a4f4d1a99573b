"""The bot's turn: answer the customer's message from the knowledge base, or hand the
dialog to a person with the recognised topic."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import service, turns
from okno.bot.triggers import REPLY
from okno.channels.models import Channel
from okno.conversations import actions
from okno.conversations.models import Conversation, Message
from okno.db.base import utcnow
from okno.jobs.worker import JobContext

log = structlog.get_logger("okno.bot")
MAX_ANSWERS = 2  # after two answers that did not settle it, a person takes over

__all__ = ["REPLY", "reply"]


async def reply(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    message = await session.get(Message, int(payload["message_id"]))
    if message is None:
        return
    conversation = await session.get(Conversation, message.conversation_id, with_for_update=True)
    if conversation is None or conversation.status != "bot":
        return  # a person has it already, or it is closed
    channel = await session.get(Channel, conversation.channel_id)
    kind = channel.kind if channel else None
    kb = service.knowledge_for(ctx.settings.effective_database_url)
    retriever = await kb.current(session)
    answered = await session.scalar(
        select(func.count()).where(
            Message.conversation_id == conversation.id, Message.author_kind == "bot"
        )
    )
    picked = payload.get("article_id")
    entry = kb.answers.get(picked) if isinstance(picked, str) else None
    if entry is not None and entry.shown(kind, utcnow()):
        decision = service.BotDecision(
            "answer", 1.0, entry.article_id, entry.answer, entry.topic, [], "picked"
        )
    elif not message.text.strip():
        decision = service.BotDecision("handoff", 0.0, None, None, None, [], "attachment")
    else:
        decision = service.decide(
            retriever,
            message.text,
            threshold=ctx.settings.bot_answer_threshold,
            channel=kind,
            now=utcnow(),
            answers=kb.answers,
        )
        if decision.decision == "answer" and (answered or 0) >= MAX_ANSWERS:
            decision = service.BotDecision(
                "handoff",
                decision.confidence,
                None,
                None,
                decision.topic,
                decision.suggestions,
                "repeated",
            )
    await turns.record(
        session,
        decision,
        text=message.text,
        channel_kind=kind,
        conversation_id=conversation.id,
        message_id=message.id,
        suggested=bool(payload.get("suggested")) or entry is not None,
        picked=entry is not None,
    )
    if decision.decision == "answer" and decision.answer:
        await actions.bot_says(session, conversation, text=decision.answer)
    else:
        await actions.hand_off(session, conversation, topic=decision.topic, reason=decision.reason)
    log.info(
        "bot.turn",
        conversation_id=conversation.id,
        decision=decision.decision,
        reason=decision.reason,
        article_id=decision.article_id,
        confidence=decision.confidence,
    )
