"""The knowledge base (import, export, history) and the bot's decisions on top of it.

Each process keeps one in-memory retriever and rebuilds it (in a thread, off the event
loop) when the base changed — judged by a fingerprint read at most every few seconds, so
an edit made through another process reaches every process within that time.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.index import Entry, Hit, Retriever
from okno.bot.models import Article, ArticleVersion, Flow
from okno.bot.own_case import tells_own_case
from okno.bot.person import asks_for_person, only_greets
from okno.db.base import utcnow
from okno.errors import BadRequest

ARTICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
FIELDS = ("title", "questions", "answer", "topic", "tags", "channels", "valid_from", "valid_to")
# Asking for a person always reaches a person, however the rest of the message scores.
# ------------------------------------------------------------------ import / export


def yaml_problem(exc: Exception) -> str:
    """A YAML parser's complaint on one line, with where it is."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(what)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _when(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)
    if isinstance(value, date):
        return datetime.combine(value, dtime(0, 0), tzinfo=utcnow().tzinfo)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-12-31") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def _strings(value: Any, name: str, *, max_items: int = 100) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    out = [str(v).strip() for v in value if str(v).strip()]
    if len(out) > max_items:
        raise ValueError(f"{name}: at most {max_items} items")
    return out


def clean_article(raw: Any) -> dict[str, Any]:
    """One article from an import file, checked; ValueError says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("each article must be a mapping with id, title, questions, answer")
    article_id = str(raw.get("id", "")).strip()
    if not ARTICLE_ID.match(article_id):
        raise ValueError("id must be 1-100 Latin letters, digits, '-', '_' or '.'")
    title = str(raw.get("title") or "").strip()
    answer = str(raw.get("answer") or "").strip()
    if not title or len(title) > 300:
        raise ValueError("title is required (at most 300 characters)")
    if not answer or len(answer) > 20_000:
        raise ValueError("answer is required (at most 20,000 characters)")
    topic = raw.get("topic")
    valid_from = _when(raw.get("valid_from"), "valid_from")
    valid_to = _when(raw.get("valid_to"), "valid_to")
    if valid_from and valid_to and valid_to <= valid_from:
        raise ValueError("valid_to must be after valid_from")
    clean: dict[str, Any] = {
        "external_id": article_id,
        "title": title,
        "questions": _strings(raw.get("questions"), "questions"),
        "answer": answer,
        "topic": str(topic).strip() or None if topic is not None else None,
        "tags": _strings(raw.get("tags"), "tags"),
        "channels": _strings(raw.get("channels"), "channels"),
        "valid_from": valid_from,
        "valid_to": valid_to,
    }
    return clean


def _content(article: Article) -> dict[str, Any]:
    return {
        "title": article.title,
        "questions": list(article.questions or []),
        "answer": article.answer,
        "topic": article.topic,
        "tags": list(article.tags or []),
        "channels": list(article.channels or []),
        "valid_from": article.valid_from.isoformat() if article.valid_from else None,
        "valid_to": article.valid_to.isoformat() if article.valid_to else None,
    }


async def import_articles(
    session: AsyncSession, data: Any, *, actor_id: int | None = None
) -> ImportReport:
    """Create or update articles by their stable id; a bad article is reported by its
    position and id and nothing of the file is stored (one transaction, all or nothing)."""
    if not isinstance(data, dict) or not isinstance(data.get("articles"), list):
        raise BadRequest("the file must have a list under 'articles'", code="bad_kb_file")
    report = ImportReport()
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(data["articles"], start=1):
        try:
            item = clean_article(raw)
            if item["external_id"] in seen:
                raise ValueError("this id appears twice in the file")
            seen.add(item["external_id"])
            cleaned.append(item)
        except ValueError as exc:
            ident = raw.get("id") if isinstance(raw, dict) else None
            report.errors.append({"position": n, "id": ident, "problem": str(exc)})
    if report.errors:
        raise BadRequest(
            f"{len(report.errors)} article(s) cannot be imported; nothing was changed",
            code="bad_kb_articles",
            errors=report.errors[:50],
        )
    existing = {
        a.external_id: a
        for a in (
            await session.scalars(select(Article).where(Article.external_id.in_(list(seen))))
        ).all()
    }
    now = utcnow()
    for item in cleaned:
        article = existing.get(item["external_id"])
        if article is None:
            article = Article(**item, version=1, updated_at=now, updated_by=actor_id)
            session.add(article)
            await session.flush()
            report.created += 1
        else:
            before = _content(article)
            for key in FIELDS:
                setattr(article, key, item[key])
            article.is_active = True
            if _content(article) == before:
                report.unchanged += 1
                continue
            article.version += 1
            article.updated_at = now
            article.updated_by = actor_id
            report.updated += 1
        session.add(
            ArticleVersion(
                article_id=article.id,
                version=article.version,
                content=_content(article),
                changed_by=actor_id,
                source="import",
                at=now,
            )
        )
    return report


async def export_articles(session: AsyncSession) -> dict[str, Any]:
    """The base in the import format (what `okno kb import` reads back unchanged)."""
    rows = (
        await session.scalars(
            select(Article).where(Article.is_active.is_(True)).order_by(Article.external_id)
        )
    ).all()
    out = []
    for a in rows:
        item: dict[str, Any] = {"id": a.external_id, **_content(a)}
        out.append({k: v for k, v in item.items() if v not in (None, [], "")})
    return {"articles": out}


async def entries(session: AsyncSession) -> list[Entry]:
    """Every active article and button flow: a flow is found by its questions like an
    article, under the id ``flow:<id>``, and picking it starts the flow."""
    rows = (await session.scalars(select(Article).where(Article.is_active.is_(True)))).all()
    flows = (await session.scalars(select(Flow).where(Flow.is_active.is_(True)))).all()
    return [
        Entry(
            article_id=f"flow:{f.external_id}",
            title=f.title,
            questions=tuple(f.questions or ()),
            answer="",
            topic=f.topic,
            channels=tuple(f.channels or ()),
        )
        for f in flows
        if f.questions
    ] + [
        Entry(
            article_id=a.external_id,
            title=a.title,
            questions=tuple(a.questions or ()),
            answer=a.answer,
            topic=a.topic,
            channels=tuple(a.channels or ()),
            valid_from=a.valid_from,
            valid_to=a.valid_to,
        )
        for a in rows
    ]


async def fingerprint(session: AsyncSession) -> tuple[int, int, str]:
    marks = []
    for model in (Article, Flow):
        marks.append(
            (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(model.version), 0),
                        func.max(model.updated_at),
                    ).where(model.is_active.is_(True))
                )
            ).one()
        )
    return (
        sum(int(m[0]) for m in marks),
        sum(int(m[1]) for m in marks),
        "|".join(str(m[2]) for m in marks),
    )


class KnowledgeBase:
    """This process's retriever, kept in step with the database: an aggregate query, at
    most once a second, tells whether the base changed (an edit through another process
    included); an edit through this process says so at once (`invalidate`)."""

    CHECK_EVERY = 1.0  # seconds between fingerprint reads

    def __init__(self) -> None:
        self.retriever = Retriever([])
        self.answers: dict[str, Entry] = {}
        self._fingerprint: tuple[int, int, str] | None = None
        self._checked = 0.0
        self._invalidated = 0.0
        self._lock = asyncio.Lock()

    def recent(self) -> Retriever | None:
        """The retriever when it was checked within the last second (no session needed):
        as-you-type suggestions skip the database entirely then."""
        if self._fingerprint is not None and time.monotonic() - self._checked < self.CHECK_EVERY:
            return self.retriever
        return None

    def invalidate(self) -> None:
        """The base was just changed through this process: check before the next use."""
        self._checked = 0.0
        self._invalidated = time.monotonic()

    async def current(self, session: AsyncSession) -> Retriever:
        fresh = self.recent()
        if fresh is not None:
            return fresh
        checked = time.monotonic()
        mark = await fingerprint(session)
        if mark == self._fingerprint:
            if self._invalidated < checked:
                self._checked = checked
            return self.retriever
        async with self._lock:
            if mark != self._fingerprint:
                items = await entries(session)
                self.retriever = await asyncio.to_thread(Retriever, items)
                self.answers = {e.article_id: e for e in items}
                self._fingerprint = mark
            # only now is it fresh: a concurrent caller must not take the old index; and
            # not at all if the base was changed after this check began (a build that
            # started before an import must not make its old index look fresh)
            if self._invalidated < checked:
                self._checked = checked
        return self.retriever


_BASES: dict[str, KnowledgeBase] = {}


def forget_bases() -> None:
    """Drop every process-level retriever (a database replaced under the same URL)."""
    _BASES.clear()


def knowledge_for(database_url: str) -> KnowledgeBase:
    """One retriever per database in this process, shared by the API and the worker."""
    return _BASES.setdefault(database_url, KnowledgeBase())


# ------------------------------------------------------------------ deciding


@dataclass(frozen=True)
class BotDecision:
    decision: str  # "answer" | "handoff"
    confidence: float
    article_id: str | None
    answer: str | None
    topic: str | None
    suggestions: list[Hit]
    reason: str  # confident, unsure, human_requested, own_case, empty


def confidence(hits: list[Hit]) -> float:
    """How sure the bot is that it should answer with the top article, 0..1: the
    probability that the message is a question for the base at all (``Hit.in_domain``)
    times how sure it is of the article (``Hit.confidence``, else the score discounted when
    a different article scores almost as well), which can at most halve it."""
    if not hits:
        return 0.0
    article = hits[0].confidence
    if article is None:
        top = hits[0].score
        runner = hits[1].score if len(hits) > 1 else 0.0
        margin = (top - runner) / top if top > 0 else 0.0
        article = max(0.0, min(1.0, top * (0.75 + 0.5 * margin)))
    if hits[0].in_domain is None:
        return round(article, 4)
    # A question for the base with an uncertain article still gets an answer (and the
    # other suggestions): a message only a person can handle, answered with an article,
    # costs more than a second try at the right one.
    return round(hits[0].in_domain * (0.5 + 0.5 * article), 4)


def decide(
    retriever: Retriever,
    text: str,
    *,
    threshold: float,
    channel: str | None = None,
    now: datetime | None = None,
    answers: dict[str, Entry] | None = None,
) -> BotDecision:
    """Answer when confident, else hand off with the most likely topic (for routing)."""
    hits = retriever.search(text, limit=5, channel=channel, now=now, rerank=True)
    topic = hits[0].topic if hits else None
    if asks_for_person(text, retriever.normalizer):
        return BotDecision("handoff", 0.0, None, None, topic, hits, "human_requested")
    if tells_own_case(text):
        return BotDecision("handoff", 0.0, None, None, topic, hits, "own_case")
    if not hits or only_greets(text):
        return BotDecision("handoff", 0.0, None, None, topic, hits, "empty")
    conf = confidence(hits)
    if conf >= threshold:
        entry = (answers or {}).get(hits[0].article_id)
        return BotDecision(
            "answer",
            conf,
            hits[0].article_id,
            entry.answer if entry else None,
            topic,
            hits,
            "confident",
        )
    return BotDecision("handoff", conf, None, None, topic, hits, "unsure")
