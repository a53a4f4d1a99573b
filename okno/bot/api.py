"""Bot handlers: ask, suggest while typing, knowledge-base import and export."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import service, turns
from okno.bot.schemas import AskRequest, AskResponse, ImportResult, Suggestion, SuggestResponse
from okno.bot.uploads import yaml_body
from okno.channels.widget import service as widget
from okno.errors import OknoError
from okno.http import State, current_user, require, write
from okno.operators.api_tokens import is_api_token
from okno.operators.models import User
from okno.operators.service import user_from_token
from okno.security import audit, permissions

log = structlog.get_logger("okno.bot")
router = APIRouter(prefix="/api/v1", tags=["bot"])
BotReader = Annotated[User, require("bot.read")]
BotManager = Annotated[User, require("bot.manage")]


async def _channel_of_caller(request: Request, state: State) -> str | None:
    """A widget visitor (their channel decides which articles may be shown) or staff and
    integrations holding ``bot.ask`` (every article); anyone else is refused."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token and not is_api_token(token):
        try:
            session = widget.verify_session(state.signing_key, token)
        except OknoError:
            async with state.db.read() as db:
                user = await user_from_token(db, key=state.signing_key, token=token)
        else:
            return await _channel_kind(state, session.channel_id)
    else:
        user = await current_user(request, state)
    permissions.check(user, "bot.ask")
    return None


# A dependency, so a caller who may not ask is refused before the body is validated.
CallerChannel = Annotated[str | None, Depends(_channel_of_caller)]


async def _channel_kind(state: State, channel_id: int) -> str | None:
    channel = state.channels.peek(channel_id)
    if channel is None:
        async with state.db.read() as session:
            channel = await state.channels.get(session, channel_id)
    return channel.kind if channel else None


def _suggestions(hits: list[Any]) -> list[Suggestion]:
    return [Suggestion(article_id=h.article_id, title=h.title, score=h.score) for h in hits]


@router.post("/bot/ask", response_model=AskResponse)
@permissions.declare("bot.ask")
async def ask(body: AskRequest, channel: CallerChannel, state: State) -> AskResponse:
    """Answer from the knowledge base when confident, else hand off with the likely topic.
    A widget session token or a staff credential (``bot.ask``)."""
    async with state.db.read() as session:
        retriever = await state.kb.current(session)
    d = service.decide(
        retriever,
        body.text,
        threshold=state.settings.bot_answer_threshold,
        channel=channel,
        now=service.utcnow(),
        answers=state.kb.answers,
    )

    async def keep(session: AsyncSession) -> None:
        await turns.record(session, d, text=body.text, channel_kind=channel or "api")

    await write(state, keep)
    return AskResponse(
        decision=d.decision,
        confidence=d.confidence,
        article_id=d.article_id,
        suggestions=_suggestions(d.suggestions),
        topic=d.topic,
        answer=d.answer,
        reason=d.reason,
    )


@router.get("/bot/suggest", response_model=SuggestResponse)
@permissions.declare("bot.ask")
async def suggest(
    channel: CallerChannel,
    state: State,
    q: Annotated[str, Query(max_length=500)] = "",
    limit: Annotated[int, Query(ge=1, le=10)] = 5,
) -> SuggestResponse:
    """Likely questions for what the customer has typed so far (after 3 letters)."""
    if len(q.strip()) < 3:
        return SuggestResponse(suggestions=[])
    retriever = state.kb.recent()
    if retriever is None:
        async with state.db.read() as session:
            retriever = await state.kb.current(session)
    hits = retriever.search(q, limit=limit, channel=channel, now=service.utcnow(), partial=True)
    return SuggestResponse(suggestions=_suggestions(hits))


@router.post("/kb/import", response_model=ImportResult)
async def import_kb(request: Request, user: BotManager, state: State) -> ImportResult:
    """Create or update articles from a YAML or JSON body (the format in DESIGN.md); all or
    nothing: a bad article is named by position and id and nothing is stored."""
    data = await yaml_body(request, code="bad_kb_file")

    async def run(session: AsyncSession) -> service.ImportReport:
        return await service.import_articles(session, data, actor_id=user.id)

    report = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("kb.imported", actor_id=user.id, created=report.created, updated=report.updated)
    return ImportResult(created=report.created, updated=report.updated, unchanged=report.unchanged)


@router.get("/kb/export")
async def export_kb(user: BotReader, request: Request, state: State) -> dict[str, Any]:
    """Every active article in the import format (recorded in the audit log)."""

    async def export(session: AsyncSession) -> dict[str, Any]:
        out = await service.export_articles(session)
        await audit.record(
            session,
            action=audit.EXPORT,
            actor=audit.actor_of(user, request),
            object_type="kb",
            details={"kind": "kb", "articles": len(out["articles"])},
        )
        return out

    return await write(state, export)
