"""The bot's content page (/bot) in real Chromium against a real ``okno serve`` process.

The admin finds an article of the demo knowledge base, changes its answer, and sees the
change in the history with who made it and a field-wise comparison; turns a group of
questions the bot could not answer into a new article (the group leaves the list); looks at
the threshold trade-off. A supervisor sees the same page without the means to change it.
Screenshots land in ``test-artifacts/`` (``bot-articles.png`` is the one in docs/bot.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from okno.bot import service as bot_service
from tests.builders import PASSWORD
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DEMO_KB = Path(bot_service.__file__).parent / "data" / "demo_kb.yaml"
# questions the demo base has no article for: they reach a person and wait on "Без ответа"
UNANSWERED = [
    "Есть ли у вас программа лояльности для пенсионеров?",
    "скидки пенсионерам есть?",
    "какие льготы для пенсионеров",
    "работаете ли вы с криптовалютой",
    "какая погода завтра",
]
# and ones it answers, so the threshold view has a spread to show
ANSWERED = [
    "как заблокировать карту",
    "потерял карточку что делать",
    "как поменять пин код",
    "забыл пин-код от карты",
    "сколько идет перевод по сбп",
    "как закрыть кредитную карту",
    "где посмотреть реквизиты счета",
]
ADDED = " Если приложения нет под рукой, позвоните по номеру на обороте карты."


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The personas, the demo knowledge base, and a few questions the bot handed off."""
    with b.serving(prepared_data("staff", seeded)) as server:
        root = token(server, "root")
        imported = httpx.post(
            f"{server.url}/api/v1/kb/import",
            content=DEMO_KB.read_bytes(),
            headers={**root, "Content-Type": "application/yaml"},
            timeout=30,
        )
        assert imported.status_code == 200, imported.text
        for question in UNANSWERED + ANSWERED:
            asked = httpx.post(  # the first one waits for the index of the imported base
                f"{server.url}/api/v1/bot/ask", json={"text": question}, headers=root, timeout=60
            )
            assert asked.status_code == 200, asked.text
        yield server


async def test_admin_edits_an_article_and_sees_it_in_the_history(
    floor: srv.OknoServer, chromium: Any
) -> None:
    root = await b.staff_page(chromium, floor.url, "root", PASSWORD, path="/bot")
    await root.locator("[data-okno=article-row]").first.wait_for()
    await root.locator("[data-okno=kb-search]").fill("заблокировать карту")
    row = root.locator("[data-okno=article-row][data-id=card-block]")
    await row.wait_for()
    await row.click()
    editor = root.locator("[data-okno=edit-article]")
    answer = editor.locator("[name=answer]")
    await answer.wait_for()
    before = await answer.input_value()
    await answer.fill(before + ADDED)
    await editor.locator("[data-okno=submit]").click()

    newest = root.locator("[data-okno=history-row][data-version='2']")
    await newest.wait_for()
    assert "Админ" in await newest.inner_text()
    assert "редактор" in await newest.inner_text()
    assert "v2" in await root.locator("[data-okno=article-version]").inner_text()
    await newest.locator("[data-okno=show-diff]").click()
    diff = root.locator("[data-okno=diff-row][data-field=answer]")
    await diff.wait_for()
    assert ADDED.strip() in await diff.locator("ins").inner_text()
    assert ADDED.strip() not in await diff.locator("del").inner_text()
    # the picture for docs/bot.md: the whole list beside the editor, history and diff
    await root.locator("[data-okno=kb-search]").fill("")
    await root.wait_for_function(
        "() => document.querySelectorAll('[data-okno=article-row]').length > 10"
    )
    await root.locator(".toast").first.wait_for(state="detached")
    await root.set_viewport_size({"width": 1440, "height": 1350})
    await root.evaluate("document.querySelector('main.page').scrollTop = 0")
    await root.screenshot(path=b.shot("bot-articles.png"))
    await root.set_viewport_size({"width": 1440, "height": 900})

    # the API agrees: version 2 by the admin, the answer changed
    history = httpx.get(
        f"{floor.url}/api/v1/kb/articles/card-block/history", headers=token(floor, "root")
    ).json()["versions"]
    assert (history[0]["version"], history[0]["changed"]) == (2, ["answer"])

    # questions without an answer become an article, and their group leaves the list
    await root.locator("[data-section=unanswered]").click()
    groups = root.locator("[data-okno=unanswered-group]")
    await groups.first.wait_for()
    count = await groups.count()
    await root.screenshot(path=b.shot("bot-unanswered.png"))
    await groups.first.locator("[data-okno=make-article]").click()
    creator = root.locator("[data-okno=new-article]")
    await creator.wait_for()
    assert (await creator.locator("[name=questions]").input_value()).strip()
    await creator.locator("[name=id]").fill("new-from-questions")
    await creator.locator("[name=answer]").fill("Ответ, написанный по вопросам клиентов.")
    await creator.locator("[data-okno=submit]").click()
    await root.locator("[data-okno=edit-article]").wait_for()
    await root.locator("[data-section=unanswered]").click()
    if count > 1:
        await root.wait_for_function(
            "n => document.querySelectorAll('[data-okno=unanswered-group]').length === n",
            arg=count - 1,
        )
    else:
        await root.locator(".empty").wait_for()

    await root.locator("[data-section=threshold]").click()
    current = root.locator("[data-okno=threshold-row].current")
    await current.wait_for()
    assert await current.get_attribute("data-threshold") is not None
    await root.set_viewport_size({"width": 1440, "height": 1100})
    await root.screenshot(path=b.shot("bot-threshold.png"))
    await root.locator("[data-section=metrics]").click()
    await root.locator("[data-okno=metric-started]").wait_for()
    await root.screenshot(path=b.shot("bot-metrics.png"))
    assert root.errors == [] and root.dialogs == []

    # a supervisor reads the same article but has nothing to save it with
    sveta = await b.staff_page(chromium, floor.url, "sveta", PASSWORD, path="/bot")
    await sveta.locator("[data-okno=read-only]").wait_for()
    await sveta.locator("[data-okno=kb-search]").fill("заблокировать карту")
    await sveta.locator("[data-okno=article-row][data-id=card-block]").click()
    await sveta.locator("[data-okno=history-row]").first.wait_for()
    assert await sveta.locator("[data-okno=edit-article] [data-okno=submit]").count() == 0
    assert await sveta.locator("[data-okno=edit-article] [name=answer]").is_disabled()
    assert sveta.errors == []
