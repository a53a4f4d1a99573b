"""Editing the knowledge base one article at a time: list, read, create, change,
deactivate, and the history with restore.

Every save writes an ``ArticleVersion`` (source ``edit``, who changed it), so the history
is complete whether a change came from an import or the editor. Articles are never
deleted: a deactivated one stops being suggested and answered (the retriever reads active
articles only) but keeps its history and can be switched back on.

Saves are optimistic: the editor sends the ``version`` it loaded, and a save over a newer
version is refused with 409 instead of silently overwriting a colleague's change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import Article, ArticleVersion
from okno.bot.service import FIELDS, _content, clean_article
from okno.db.base import utcnow
from okno.errors import Conflict, NotFound, Unprocessable
from okno.operators.models import User

# The field a problem of ``clean_article`` is about (its messages start with the field's
# name), and the stable code the UI translates.
_PROBLEM_CODES = {
    "id": "bad_article_id",
    "title": "article_title_required",
    "answer": "article_answer_required",
    "valid_from": "bad_article_dates",
    "valid_to": "bad_article_dates",
    "questions": "bad_article_list",
    "tags": "bad_article_list",
    "channels": "bad_article_list",
}
PAGE_MAX = 200


@dataclass
class ArticlePage:
    articles: list[Article]
    total: int
    topics: list[str]


def _fold(text: str) -> str:
    return text.casefold().replace("ё", "е")


def check(raw: dict[str, Any]) -> dict[str, Any]:
    """``clean_article`` with its complaint turned into a 422 naming the field."""
    try:
        return clean_article(raw)
    except ValueError as exc:
        message = str(exc)
        field = message.split(" ", 1)[0].rstrip(":")
        if field not in _PROBLEM_CODES:
            raise Unprocessable(message, code="invalid_article") from None
        raise Unprocessable(message, code=_PROBLEM_CODES[field], field=field) from None


def content(article: Article) -> dict[str, Any]:
    """What a version keeps: the import format's fields plus whether it was active."""
    return {**_content(article), "is_active": article.is_active}


def _matches(article: Article, needle: str) -> bool:
    haystack = " ".join(
        [
            article.external_id,
            article.title,
            article.answer,
            article.topic or "",
            *(article.questions or []),
            *(article.tags or []),
        ]
    )
    return needle in _fold(haystack)


async def list_articles(
    session: AsyncSession,
    *,
    query: str = "",
    topic: str | None = None,
    active: bool | None = True,
    offset: int = 0,
    limit: int = 50,
) -> ArticlePage:
    """A page of articles, newest change first; ``query`` matches id, title, questions,
    answer, topic and tags case- and ё-insensitively (done here, not in SQL: SQLite's
    ``lower()`` leaves Cyrillic as it is, and the base is small enough to read)."""
    stmt = select(Article).order_by(Article.updated_at.desc(), Article.id.desc())
    if active is not None:
        stmt = stmt.where(Article.is_active.is_(active))
    if topic:
        stmt = stmt.where(Article.topic == topic)
    rows = list((await session.scalars(stmt)).all())
    needle = _fold(query.strip())
    if needle:
        rows = [a for a in rows if _matches(a, needle)]
    topics = await session.scalars(
        select(Article.topic).where(Article.topic.is_not(None)).distinct().order_by(Article.topic)
    )
    limit = max(1, min(limit, PAGE_MAX))
    return ArticlePage(
        articles=rows[offset : offset + limit],
        total=len(rows),
        topics=[t for t in topics.all() if t],
    )


async def get_article(session: AsyncSession, external_id: str) -> Article | None:
    return await session.scalar(select(Article).where(Article.external_id == external_id))


async def access_article(session: AsyncSession, external_id: str, *, lock: bool = False) -> Article:
    """The article or NotFound; ``lock``: held until commit (a save compares versions)."""
    stmt = select(Article).where(Article.external_id == external_id)
    if lock:
        stmt = stmt.with_for_update()
    article = await session.scalar(stmt)
    if article is None:
        raise NotFound(f"article {external_id!r} does not exist", code="article_not_found")
    return article


def _check_version(article: Article, version: int) -> None:
    if article.version != version:
        raise Conflict(
            f"someone else changed this article (now version {article.version}, you edited "
            f"version {version}); reload it and make your change again",
            code="article_changed",
            current_version=article.version,
        )


def _keep(session: AsyncSession, article: Article, *, actor_id: int | None) -> None:
    session.add(
        ArticleVersion(
            article_id=article.id,
            version=article.version,
            content=content(article),
            changed_by=actor_id,
            source="edit",
            at=article.updated_at,
        )
    )


async def create_article(session: AsyncSession, raw: dict[str, Any], *, actor_id: int) -> Article:
    """A new article (version 1). Raises 409 when the id is taken, even by an inactive
    one: ids are stable names other systems may link to."""
    item = check(raw)
    if await get_article(session, item["external_id"]) is not None:
        raise Conflict(
            f"an article with id {item['external_id']!r} exists already",
            code="article_exists",
            field="id",
        )
    now = utcnow()
    article = Article(**item, is_active=True, version=1, updated_at=now, updated_by=actor_id)
    session.add(article)
    await session.flush()
    _keep(session, article, actor_id=actor_id)
    await session.flush()
    return article


async def update_article(
    session: AsyncSession,
    external_id: str,
    raw: dict[str, Any],
    *,
    version: int,
    actor_id: int,
) -> Article:
    """Save the editor's fields over ``version``; a newer version is a 409, an edit that
    changes nothing stores nothing (no empty history entries)."""
    article = await access_article(session, external_id, lock=True)
    _check_version(article, version)
    item = check({**raw, "id": external_id})
    before = content(article)
    for key in FIELDS:
        setattr(article, key, item[key])
    if content(article) == before:
        return article
    return await _bump(session, article, actor_id=actor_id)


async def _bump(session: AsyncSession, article: Article, *, actor_id: int) -> Article:
    article.version += 1
    article.updated_at = utcnow()
    article.updated_by = actor_id
    _keep(session, article, actor_id=actor_id)
    await session.flush()
    return article


async def set_active(
    session: AsyncSession, external_id: str, *, active: bool, version: int, actor_id: int
) -> Article:
    """Switch an article off (no longer suggested or answered; history stays) or on."""
    article = await access_article(session, external_id, lock=True)
    _check_version(article, version)
    if article.is_active == active:
        return article
    article.is_active = active
    return await _bump(session, article, actor_id=actor_id)


async def history(session: AsyncSession, article: Article) -> list[ArticleVersion]:
    """Every saved state, newest first."""
    rows = await session.scalars(
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article.id)
        .order_by(ArticleVersion.version.desc(), ArticleVersion.id.desc())
    )
    return list(rows.all())


async def access_version(session: AsyncSession, article: Article, version: int) -> ArticleVersion:
    row = await session.scalar(
        select(ArticleVersion)
        .where(ArticleVersion.article_id == article.id, ArticleVersion.version == version)
        .order_by(ArticleVersion.id.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(
            f"article {article.external_id!r} has no version {version}", code="version_not_found"
        )
    return row


async def restore_version(
    session: AsyncSession,
    external_id: str,
    *,
    restore: int,
    version: int,
    actor_id: int,
) -> Article:
    """Make an old version's content current again, as a new version (history is never
    rewritten, so the restore itself shows in it)."""
    article = await access_article(session, external_id, lock=True)
    _check_version(article, version)
    old = (await access_version(session, article, restore)).content
    item = check({"id": external_id, **old})
    before = content(article)
    for key in FIELDS:
        setattr(article, key, item[key])
    if "is_active" in old:
        article.is_active = bool(old["is_active"])
    if content(article) == before:
        return article
    return await _bump(session, article, actor_id=actor_id)


def changed_fields(new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """The fields that differ from the previous version (all of them for the first)."""
    # in the article's own field order: PostgreSQL keeps JSON keys in an order of its own
    if old is None:
        return _in_order(k for k in new if new.get(k) not in (None, [], ""))
    keys = {*new, *old}
    return _in_order(k for k in keys if _field(new, k) != _field(old, k))


FIELD_ORDER = (*FIELDS, "is_active")


def _in_order(keys: Any) -> list[str]:
    wanted = set(keys)
    known = [k for k in FIELD_ORDER if k in wanted]
    return known + sorted(wanted - set(FIELD_ORDER))


def _field(version: dict[str, Any], key: str) -> Any:
    # imported versions do not keep ``is_active``: an import always leaves it on
    return version.get(key, True if key == "is_active" else None)


async def names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    """Display names of the staff who changed articles (for the history)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(User.id, User.display_name).where(User.id.in_(sorted(user_ids)))
    )
    return {int(i): str(n) for i, n in rows.all()}
