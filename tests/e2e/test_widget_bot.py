"""The bot in the web widget, in real Chromium against a real ``okno serve`` process.

The widget ``acme`` has the bot on (``okno channels update acme --bot``) and a small
knowledge base (``okno kb import``). A customer typing "заблок" is offered "Как
заблокировать карту"; picking it sends it and the bot answers at once, labelled as the bot,
with a "Позвать оператора" button under the answer that hands the dialog to a person and
disappears. A question the knowledge base does not know goes to a person by itself.
Suggestions come only while the bot has the dialog, an older answer never replaces a newer
one, a 401 shows nothing, and markup in an article is shown as text. Screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import WIDGET_KEY
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EVIL = "<img src=x onerror=alert(1)>"
KB = f"""
articles:
  - id: card-block
    title: Как заблокировать карту
    questions:
      - "Как заблокировать карту?"
      - "Потерял карту, что делать"
      - "Украли карту"
    answer: "Заблокировать карту можно в приложении: Карты → Заблокировать."
    topic: cards
  - id: card-reissue
    title: Как перевыпустить карту
    questions: ["Как перевыпустить карту", "Закончился срок действия карты"]
    answer: "Перевыпустить карту можно в приложении или в отделении."
    topic: cards
  - id: sbp
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона", "Перевод через СБП"]
    answer: "Платежи → По номеру телефона."
    topic: transfers
  - id: tariffs
    title: "{EVIL} Тарифы на обслуживание"
    questions: ["Сколько стоит обслуживание", "Тарифы на обслуживание карты"]
    answer: "{EVIL} Обслуживание бесплатное. <script>alert(2)</script>"
    topic: cards
"""
CARD_BLOCK_ANSWER = "Заблокировать карту можно в приложении: Карты → Заблокировать."
HANDED_OFF = "Передаю ваш вопрос специалисту"


def with_bot(folder: Path) -> None:
    seeded(folder)
    env = srv.okno_env(folder)
    switched = srv.run_cli(["channels", "update", WIDGET_KEY, "--bot", "--json"], env)
    assert json.loads(switched.stdout)["bot"] is True
    kb = folder / "kb.yaml"
    kb.write_text(KB, encoding="utf-8")
    out = srv.run_cli(["kb", "import", str(kb), "--json"], env)
    assert json.loads(out.stdout)["created"] == 4


@pytest.fixture
def bank(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The test personas, the widget ``acme`` with ``"bot": true`` and the knowledge base
    above; nobody online, so a dialog handed off waits."""
    with b.serving(prepared_data("widget-bot", with_bot)) as server:
        yield server


async def conversation_of(page: Any, server: srv.OknoServer) -> dict[str, Any]:
    """The customer's current dialog as staff see it (found through the widget's token)."""
    session = await page.evaluate(f"localStorage.getItem('okno:{WIDGET_KEY}:token')")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        mine = await http.get(
            "/api/v1/widget/messages", headers={"Authorization": f"Bearer {session}"}
        )
        assert mine.status_code == 200, mine.text
        conversation_id = mine.json()["messages"][-1]["conversation_id"]
        shown = await http.get(
            f"/api/v1/conversations/{conversation_id}", headers=token(server, "root")
        )
    assert shown.status_code == 200, shown.text
    data: dict[str, Any] = shown.json()
    return data


async def type_slowly(page: Any, text: str) -> None:
    box = page.locator("[data-okno=input]")
    await box.click()
    await box.press_sequentially(text, delay=40)


def suggestions(page: Any) -> Any:
    return page.locator("[data-okno=suggestion]")


def count_suggest_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/api/v1/bot/suggest" in r.url else None)
    return seen


async def test_a_picked_suggestion_is_answered_and_the_customer_can_ask_for_a_person(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    asked = count_suggest_requests(page)
    await page.locator("[data-okno=status][data-state=online]").wait_for()

    # Two letters ask nothing; the third one brings the likely questions (one request for
    # the whole burst of keys).
    await type_slowly(page, "за")
    await page.wait_for_timeout(400)
    assert asked == [] and await page.locator("[data-okno=suggestions]").is_hidden()
    await type_slowly(page, "блок")
    first = suggestions(page).first
    await first.wait_for()
    assert await first.inner_text() == "Как заблокировать карту"
    assert await first.get_attribute("data-article-id") == "card-block"
    assert 1 <= len(asked) <= 2, asked
    assert await suggestions(page).count() <= 5
    await page.locator("[data-okno=window]").screenshot(path=b.shot("widget-suggestions.png"))

    # Keyboard: arrows mark a question, Esc closes the list and leaves the chat open.
    box = page.locator("[data-okno=input]")
    await box.press("ArrowDown")
    assert await first.get_attribute("aria-selected") == "true"
    assert await box.get_attribute("aria-activedescendant") == await first.get_attribute("id")
    await box.press("Escape")
    await page.locator("[data-okno=suggestions]").wait_for(state="hidden")
    assert await page.locator("[data-okno=window]").is_visible()
    assert await box.input_value() == "заблок"

    # Typing on brings the list back; a click sends the question, the bot answers at once.
    await type_slowly(page, "ировать")
    await suggestions(page).filter(has_text="Как заблокировать карту").click()
    assert await box.input_value() == ""
    await page.locator("[data-okno=suggestions]").wait_for(state="hidden")
    mine = b.widget_messages(page, "customer")
    await mine.filter(has_text="Как заблокировать карту").wait_for()
    bot = b.widget_messages(page, "bot").filter(has_text=CARD_BLOCK_ANSWER)
    await bot.wait_for()
    assert (await bot.locator(".name").inner_text()).strip() == "Бот"
    button = bot.locator("[data-okno=handoff]")
    await button.wait_for()
    assert await button.inner_text() == "Позвать оператора"
    await page.locator("[data-okno=window]").screenshot(path=b.shot("widget-bot-answer.png"))
    dialog = await conversation_of(page, bank)
    assert dialog["status"] == "bot"
    async with httpx.AsyncClient(base_url=bank.url, timeout=10) as http:
        stored = (
            await http.get(
                f"/api/v1/conversations/{dialog['id']}/messages", headers=token(bank, "root")
            )
        ).json()["messages"]
    assert [(m["author_kind"], m["text"]) for m in stored] == [
        ("customer", "Как заблокировать карту"),
        ("bot", CARD_BLOCK_ANSWER),
    ]

    # "Позвать оператора": the dialog goes to a person's queue, the button is gone.
    await button.click()
    await page.locator("[data-okno=handoff]").wait_for(state="detached")
    await b.widget_messages(page, "system").filter(has_text=HANDED_OFF).wait_for()
    dialog = await conversation_of(page, bank)
    assert dialog["status"] in ("waiting", "assigned"), dialog
    assert dialog["topic"] == "cards"
    await page.locator("[data-okno=queue]").filter(has_text="Вы в очереди").wait_for(timeout=20_000)

    # A person serves the dialog now: no more suggestions, nothing asked.
    before = len(asked)
    await type_slowly(page, "заблокировать")
    await page.wait_for_timeout(600)
    assert len(asked) == before
    assert await page.locator("[data-okno=suggestions]").is_hidden()

    # After a reload the history says so too: no button, no suggestions.
    await page.reload()
    await page.locator("[data-okno=bubble]").click()
    await b.widget_messages(page, "bot").filter(has_text=CARD_BLOCK_ANSWER).wait_for()
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    await type_slowly(page, "заблокировать")
    await page.wait_for_timeout(600)
    assert len(asked) == before
    assert await page.locator("[data-okno=handoff]").count() == 0
    assert page.errors == [] and page.dialogs == []


async def test_a_question_the_bot_does_not_know_goes_to_a_person(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    # First a suggestion picked with the keyboard only.
    await type_slowly(page, "перевод по номеру")
    await suggestions(page).filter(has_text="Перевод по номеру телефона").wait_for()
    box = page.locator("[data-okno=input]")
    await box.press("ArrowDown")
    await box.press("Enter")
    answer = b.widget_messages(page, "bot").filter(has_text="Платежи → По номеру телефона.")
    await answer.wait_for()
    await answer.locator("[data-okno=handoff]").wait_for()
    assert await box.input_value() == ""

    # A free question the knowledge base does not know: a person takes over by itself.
    await b.customer_types(page, "Какая завтра погода в Казани?")
    await b.widget_messages(page, "system").filter(has_text=HANDED_OFF).wait_for()
    await page.locator("[data-okno=handoff]").wait_for(state="detached")
    assert await b.widget_messages(page, "bot").count() == 1
    dialog = await conversation_of(page, bank)
    assert dialog["status"] in ("waiting", "assigned"), dialog

    # The same widget in English.
    english = await chromium.new_context(locale="en-GB")
    other = await english.new_page()
    other.set_default_timeout(15_000)
    errors = b.watch_errors(other)
    await other.goto(f"{bank.url}/demo?key={WIDGET_KEY}&lang=en")
    await other.locator("[data-okno=bubble]").click()
    await other.locator("[data-okno=status][data-state=online]").wait_for()
    await type_slowly(other, "украли карту")
    await suggestions(other).filter(has_text="Как заблокировать карту").click()
    reply = b.widget_messages(other, "bot").filter(has_text=CARD_BLOCK_ANSWER)
    await reply.locator("[data-okno=handoff]", has_text="Talk to a person").wait_for()
    assert (await reply.locator(".name").inner_text()).strip() == "Bot"
    assert errors == [] and page.errors == [] and page.dialogs == []


async def test_stale_and_refused_answers_and_markup_in_articles(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await page.locator("[data-okno=status][data-state=online]").wait_for()

    # An older request answering after a newer one does not replace its list.
    async def slow_then_fast(route: Any) -> None:
        if route.request.url.endswith("q=%D0%BF%D0%B5%D1%80%D0%B5%D0%B2%D0%BE%D0%B4&limit=5"):
            await asyncio.sleep(1.5)  # "перевод": held back, answered after the newer one
            title = "СТАРЫЙ ОТВЕТ"
        else:
            title = "НОВЫЙ ОТВЕТ"
        body = {"suggestions": [{"article_id": "sbp", "title": title, "score": 0.9}]}
        try:
            await route.fulfill(json=body)
        except Exception:  # the widget gave up on it (aborted): that is fine too
            pass

    await page.route("**/api/v1/bot/suggest?*", slow_then_fast)
    box = page.locator("[data-okno=input]")
    await type_slowly(page, "перевод")
    await page.wait_for_timeout(300)  # its request is on the way
    await type_slowly(page, " на карту")
    await suggestions(page).filter(has_text="НОВЫЙ ОТВЕТ").wait_for()
    await page.wait_for_timeout(2000)  # the old answer would have come by now
    assert await suggestions(page).all_inner_texts() == ["НОВЫЙ ОТВЕТ"]
    await page.unroute("**/api/v1/bot/suggest?*")

    # A refused session (401): quietly no list, no error on screen.
    await page.route(
        "**/api/v1/bot/suggest?*",
        lambda route: route.fulfill(status=401, json={"detail": "bad token", "code": "x"}),
    )
    await box.fill("")
    await type_slowly(page, "перевыпуск")
    await page.wait_for_timeout(800)
    assert await page.locator("[data-okno=suggestions]").is_hidden()
    assert await page.locator("[data-okno=banner]").is_hidden()
    await page.unroute("**/api/v1/bot/suggest?*")

    # Markup in an article's title and answer is shown as text and runs nothing.
    await box.fill("")
    await type_slowly(page, "тарифы обслуживание")
    tariff = suggestions(page).filter(has_text="Тарифы на обслуживание")
    await tariff.wait_for()
    assert await tariff.inner_text() == f"{EVIL} Тарифы на обслуживание"
    await tariff.click()
    answer = b.widget_messages(page, "bot").filter(has_text="Обслуживание бесплатное")
    await answer.wait_for()
    assert EVIL in await answer.inner_text()
    assert "<script>alert(2)</script>" in await answer.inner_text()
    assert await b.widget_messages(page, "customer").filter(has_text=EVIL).count() == 1
    await page.wait_for_timeout(500)
    assert await page.locator("img[src=x]").count() == 0
    assert page.dialogs == [] and page.errors == []
