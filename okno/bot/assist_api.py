"""Reply-suggestion handlers: what the operator is offered for a dialog, and rejecting one.
(Accepting or editing is recorded by the send itself: ``suggestion_id`` in the message.)"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import assist
from okno.bot.models import ReplySuggestion
from okno.bot.schemas import ReplySuggestionOut, ReplySuggestionsOut
from okno.errors import Forbidden
from okno.http import State, require, write
from okno.inputs import IdPath
from okno.operators.models import User

log = structlog.get_logger("okno.bot")
router = APIRouter(prefix="/api/v1", tags=["reply suggestions"])
DialogReader = Annotated[User, require("conversations.read_team")]
Replier = Annotated[User, require("conversations.reply")]


def suggestion_out(row: ReplySuggestion) -> ReplySuggestionOut:
    return ReplySuggestionOut(
        id=row.id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        rank=row.rank,
        source=row.source,
        ref=row.ref,
        text=row.text,
        score=row.score,
        outcome=row.outcome,
        sent_message_id=row.sent_message_id,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def _shaped(found: assist.Suggestions) -> ReplySuggestionsOut:
    return ReplySuggestionsOut(
        conversation_id=found.conversation_id,
        message_id=found.message_id,
        answered=found.answered,
        suggestions=[suggestion_out(r) for r in found.rows],
    )


@router.get(
    "/conversations/{conversation_id}/reply-suggestions", response_model=ReplySuggestionsOut
)
async def reply_suggestions(
    conversation_id: IdPath, user: DialogReader, state: State
) -> ReplySuggestionsOut:
    """Up to three replies to the dialog's newest customer message, best first: from the
    knowledge base and from colleagues' earlier answers to similar questions. Worked out on
    the first request and kept, so every operator sees the same ones with their outcome.
    Nothing new is worked out once the message was answered or the dialog closed."""
    async with state.db.read() as session:
        try:
            found, conversation, message = await assist.read_suggestions(
                session, conversation_id=conversation_id, actor=user
            )
        except Forbidden:
            log.warning("access.denied", user_id=user.id, conversation_id=conversation_id)
            raise
        if found.rows or message is None or found.answered or conversation.status == "closed":
            return _shaped(found)
        chosen = await assist.compute(
            session,
            conversation=conversation,
            message=message,
            kb=state.kb,
            history=assist.history_for(state.settings.effective_database_url),
            settings=state.settings,
        )
    if not chosen:
        return _shaped(found)
    message_id = message.id

    async def keep(session: AsyncSession) -> list[ReplySuggestion]:
        return await assist.store(
            session, conversation_id=conversation_id, message_id=message_id, chosen=chosen
        )

    found.rows = await write(state, keep)
    return _shaped(found)


@router.post("/reply-suggestions/{suggestion_id}/reject", response_model=ReplySuggestionOut)
async def reject(suggestion_id: IdPath, user: Replier, state: State) -> ReplySuggestionOut:
    """The operator turned the suggestion down (the × on it); 409 once decided."""

    async def run(session: AsyncSession) -> ReplySuggestionOut:
        row = await assist.reject(session, suggestion_id=suggestion_id, actor=user)
        return suggestion_out(row)

    return await write(state, run)
