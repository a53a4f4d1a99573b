"""The process's index follows the base: an edit made while an older index is being built
must not be hidden behind that build."""

from __future__ import annotations

import asyncio

import yaml

from okno.bot.service import KnowledgeBase, import_articles
from okno.db.session import Database

FIRST = """
articles:
  - id: card-block
    title: Как заблокировать карту
    questions: ["Как заблокировать карту?", "Потерял карту, что делать"]
    answer: Заблокировать карту можно в приложении.
"""
SECOND = """
articles:
  - id: sbp
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "Платежи → По номеру телефона."
"""


async def test_an_import_during_a_rebuild_is_seen_at_the_next_use(db: Database) -> None:
    kb = KnowledgeBase()
    async with db.transaction() as session:
        await import_articles(session, yaml.safe_load(FIRST))

    async def use() -> list[str]:
        async with db.read() as session:
            return [e.article_id for e in (await kb.current(session)).entries]

    building = asyncio.create_task(use())
    while not kb._lock.locked():  # the index of FIRST is being built now
        await asyncio.sleep(0.001)
    async with db.transaction() as session:
        await import_articles(session, yaml.safe_load(SECOND))
    kb.invalidate()  # what the import endpoint does
    assert await building == ["card-block"]
    assert sorted(await use()) == ["card-block", "sbp"]
