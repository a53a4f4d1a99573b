"""Handlers of the bot's administration: the article editor with history, the unanswered
questions, template candidates from operator answers, and the threshold trade-off.

Admins change; supervisors may read everything here (they coach operators on the same
content); operators get 403.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import articles, learning, threshold
from okno.bot.admin_schemas import (
    AcceptCandidate,
    AcceptedOut,
    ArticleCreate,
    ArticleList,
    ArticleOut,
    ArticleSummary,
    ArticleUpdate,
    HistoryOut,
    Person,
    RestoreRequest,
    ReviewRequest,
    ReviewResult,
    TemplateCandidateOut,
    TemplateCandidatesOut,
    ThresholdOut,
    TradeOffRow,
    UnansweredGroupOut,
    UnansweredOut,
    VersionOut,
    VersionRef,
    VersionSummary,
)
from okno.bot.models import Article
from okno.http import State, require, write
from okno.inputs import MAX_ID
from okno.operators.models import User
from okno.replies import service as replies

log = structlog.get_logger("okno.bot")
router = APIRouter(prefix="/api/v1", tags=["bot administration"])

ArticlePath = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
]
CandidatePath = Annotated[str, Path(min_length=40, max_length=40, pattern=r"^[0-9a-f]{40}$")]
Days = Annotated[int, Query(ge=1, le=365)]
THRESHOLD_SETTING = "OKNO_BOT_ANSWER_THRESHOLD"
BotReader = Annotated[User, require("bot.read")]
BotManager = Annotated[User, require("bot.manage")]


def _person(user_id: int | None, names: dict[int, str]) -> Person | None:
    return Person(id=user_id, name=names.get(user_id, "")) if user_id is not None else None


def _article_out(a: Article, names: dict[int, str]) -> ArticleOut:
    return ArticleOut(
        id=a.external_id,
        title=a.title,
        questions=list(a.questions or []),
        answer=a.answer,
        topic=a.topic,
        tags=list(a.tags or []),
        channels=list(a.channels or []),
        valid_from=a.valid_from,
        valid_to=a.valid_to,
        is_active=a.is_active,
        version=a.version,
        updated_at=a.updated_at,
        updated_by=_person(a.updated_by, names),
    )


async def _full(session: AsyncSession, a: Article) -> ArticleOut:
    names = await articles.names(session, {a.updated_by} if a.updated_by else set())
    return _article_out(a, names)


# ------------------------------------------------------------------ articles


@router.get("/kb/articles", response_model=ArticleList)
async def list_articles(
    user: BotReader,
    state: State,
    q: Annotated[str, Query(max_length=200)] = "",
    topic: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str, Query(pattern="^(active|inactive|all)$")] = "active",
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=articles.PAGE_MAX)] = 50,
) -> ArticleList:
    """Articles, most recently changed first; ``q`` searches id, title, questions, answer,
    topic and tags; ``status`` active (default), inactive or all."""
    active = {"active": True, "inactive": False, "all": None}[status]
    async with state.db.read() as session:
        page = await articles.list_articles(
            session, query=q, topic=topic, active=active, offset=offset, limit=limit
        )
        names = await articles.names(
            session, {a.updated_by for a in page.articles if a.updated_by is not None}
        )
    return ArticleList(
        articles=[
            ArticleSummary(
                id=a.external_id,
                title=a.title,
                topic=a.topic,
                questions=len(a.questions or []),
                channels=list(a.channels or []),
                valid_from=a.valid_from,
                valid_to=a.valid_to,
                is_active=a.is_active,
                version=a.version,
                updated_at=a.updated_at,
                updated_by=_person(a.updated_by, names),
            )
            for a in page.articles
        ],
        total=page.total,
        topics=page.topics,
    )


@router.post("/kb/articles", response_model=ArticleOut, status_code=201)
async def create_article(body: ArticleCreate, user: BotManager, state: State) -> ArticleOut:
    """A new article; 409 ``article_exists`` when the id is taken (an inactive one too)."""

    async def run(session: AsyncSession) -> ArticleOut:
        raw = {**body.raw(), "id": body.id}
        return await _full(session, await articles.create_article(session, raw, actor_id=user.id))

    out = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("kb.article_created", actor_id=user.id, article_id=out.id)
    return out


@router.get("/kb/articles/{article_id}", response_model=ArticleOut)
async def get_article(article_id: ArticlePath, user: BotReader, state: State) -> ArticleOut:
    async with state.db.read() as session:
        return await _full(session, await articles.access_article(session, article_id))


@router.put("/kb/articles/{article_id}", response_model=ArticleOut)
async def update_article(
    article_id: ArticlePath, body: ArticleUpdate, user: BotManager, state: State
) -> ArticleOut:
    """Save the article over the ``version`` you edited; 409 ``article_changed`` (with
    ``current_version``) when someone saved a newer one meanwhile."""

    async def run(session: AsyncSession) -> ArticleOut:
        article = await articles.update_article(
            session, article_id, body.raw(), version=body.version, actor_id=user.id
        )
        return await _full(session, article)

    out = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("kb.article_changed", actor_id=user.id, article_id=article_id, version=out.version)
    return out


async def _set_active(
    state: State, user: User, article_id: str, body: VersionRef, *, active: bool
) -> ArticleOut:
    async def run(session: AsyncSession) -> ArticleOut:
        article = await articles.set_active(
            session, article_id, active=active, version=body.version, actor_id=user.id
        )
        return await _full(session, article)

    out = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("kb.article_active", actor_id=user.id, article_id=article_id, active=active)
    return out


@router.post("/kb/articles/{article_id}/deactivate", response_model=ArticleOut)
async def deactivate_article(
    article_id: ArticlePath, body: VersionRef, user: BotManager, state: State
) -> ArticleOut:
    """Stop suggesting and answering with it; nothing is deleted, the history stays."""
    return await _set_active(state, user, article_id, body, active=False)


@router.post("/kb/articles/{article_id}/activate", response_model=ArticleOut)
async def activate_article(
    article_id: ArticlePath, body: VersionRef, user: BotManager, state: State
) -> ArticleOut:
    return await _set_active(state, user, article_id, body, active=True)


@router.get("/kb/articles/{article_id}/history", response_model=HistoryOut)
async def article_history(article_id: ArticlePath, user: BotReader, state: State) -> HistoryOut:
    """Every saved version, newest first: who, when, from the editor or an import, and
    which fields changed against the version before."""
    async with state.db.read() as session:
        article = await articles.access_article(session, article_id)
        versions = await articles.history(session, article)
        names = await articles.names(
            session, {v.changed_by for v in versions if v.changed_by is not None}
        )
    out = []
    for i, v in enumerate(versions):
        before = versions[i + 1].content if i + 1 < len(versions) else None
        out.append(
            VersionSummary(
                version=v.version,
                source=v.source,
                changed_by=_person(v.changed_by, names),
                at=v.at,
                changed=articles.changed_fields(v.content, before),
            )
        )
    return HistoryOut(article_id=article_id, versions=out)


@router.get("/kb/articles/{article_id}/versions/{version}", response_model=VersionOut)
async def article_version(
    article_id: ArticlePath,
    version: Annotated[int, Path(ge=1, le=MAX_ID)],
    user: BotReader,
    state: State,
) -> VersionOut:
    """One version's content (what the diff compares)."""
    async with state.db.read() as session:
        article = await articles.access_article(session, article_id)
        row = await articles.access_version(session, article, version)
        older = (
            await articles.access_version(session, article, version - 1) if version > 1 else None
        )
        names = await articles.names(session, {row.changed_by} if row.changed_by else set())
    return VersionOut(
        version=row.version,
        source=row.source,
        changed_by=_person(row.changed_by, names),
        at=row.at,
        changed=articles.changed_fields(row.content, older.content if older else None),
        content=row.content,
    )


@router.post("/kb/articles/{article_id}/restore", response_model=ArticleOut)
async def restore_article(
    article_id: ArticlePath, body: RestoreRequest, user: BotManager, state: State
) -> ArticleOut:
    """Make version ``restore`` current again, as a new version (``version``: the one you
    saw, as for a save)."""

    async def run(session: AsyncSession) -> ArticleOut:
        article = await articles.restore_version(
            session, article_id, restore=body.restore, version=body.version, actor_id=user.id
        )
        return await _full(session, article)

    out = await write(state, run)
    state.kb.invalidate()  # suggestions and answers see it at once
    log.info("kb.article_restored", actor_id=user.id, article_id=article_id, to=body.restore)
    return out


# ------------------------------------------------------------------ learning loop


@router.get("/bot/unanswered", response_model=UnansweredOut)
async def unanswered(user: BotReader, state: State, days: Days = 30) -> UnansweredOut:
    """Questions the bot handed off for want of an article, not yet reviewed, grouped by
    meaning: biggest groups first."""
    async with state.db.read() as session:
        retriever = await state.kb.current(session)
        groups = await learning.unanswered(session, normalizer=retriever.normalizer, days=days)
    return UnansweredOut(
        days=days,
        groups=[
            UnansweredGroupOut(
                turn_ids=g.turn_ids,
                count=g.count,
                examples=g.examples,
                questions=g.questions,
                topic=g.topic,
                newest=g.newest,
            )
            for g in groups
        ],
    )


@router.post("/bot/unanswered/review", response_model=ReviewResult)
async def review_unanswered(body: ReviewRequest, user: BotManager, state: State) -> ReviewResult:
    """Take a group's questions off the list: dismissed, or answered by a new article."""

    async def run(session: AsyncSession) -> int:
        return await learning.mark_reviewed(
            session,
            turn_ids=body.turn_ids,
            action=body.action,
            article_id=body.article_id,
            actor_id=user.id,
        )

    return ReviewResult(reviewed=await write(state, run))


@router.get("/bot/template-candidates", response_model=TemplateCandidatesOut)
async def template_candidates(
    user: BotReader,
    state: State,
    days: Days = 30,
    min_dialogs: Annotated[int, Query(ge=2, le=1000)] = 3,
) -> TemplateCandidatesOut:
    """Operator answers repeated in at least ``min_dialogs`` dialogs over ``days`` that are
    not saved replies yet (personal data never offered)."""
    async with state.db.read() as session:
        found = await learning.template_candidates(session, days=days, min_dialogs=min_dialogs)
    return TemplateCandidatesOut(
        days=days,
        min_dialogs=min_dialogs,
        candidates=[TemplateCandidateOut(**vars(c)) for c in found],
    )


@router.post("/bot/template-candidates/{key}/accept", response_model=AcceptedOut, status_code=201)
async def accept_candidate(
    key: CandidatePath, body: AcceptCandidate, user: BotManager, state: State
) -> AcceptedOut:
    """Save the answer (as the admin edited it) as a shared or team saved reply; it is not
    offered again."""

    async def run(session: AsyncSession) -> AcceptedOut:
        reply = await replies.create(
            session,
            actor=user,
            scope=body.scope,
            shortcut=body.shortcut,
            title=body.title,
            body=body.body,
            team_id=body.team_id,
        )
        await learning.forget_candidate(session, key=key, actor_id=user.id, outcome="accepted")
        return AcceptedOut(saved_reply_id=reply.id, shortcut=reply.shortcut)

    return await write(state, run)


@router.post("/bot/template-candidates/{key}/dismiss", status_code=204)
async def dismiss_candidate(key: CandidatePath, user: BotManager, state: State) -> Response:
    """Do not offer this answer again."""

    async def run(session: AsyncSession) -> None:
        await learning.forget_candidate(session, key=key, actor_id=user.id)

    await write(state, run)
    return Response(status_code=204)


# ------------------------------------------------------------------ threshold


@router.get("/bot/threshold", response_model=ThresholdOut)
async def threshold_trade_off(user: BotReader, state: State, days: Days = 30) -> ThresholdOut:
    """The answer threshold in force and, replayed over the last ``days`` of bot turns,
    the share answered and handed off at each threshold 0.05…0.95. The setting is an
    environment variable (``OKNO_BOT_ANSWER_THRESHOLD``), read-only here."""
    current = state.settings.bot_answer_threshold
    async with state.db.read() as session:
        total, rows = await threshold.trade_offs(session, current=current, days=days)
    return ThresholdOut(
        threshold=current,
        setting=THRESHOLD_SETTING,
        days=days,
        questions=total,
        rows=[
            TradeOffRow(
                threshold=r.threshold,
                answered=r.answered,
                handed_off=r.handed_off,
                answer_share=r.answer_share,
                handoff_share=r.handoff_share,
                current=abs(r.threshold - current) < 1e-9,
            )
            for r in rows
        ],
    )
