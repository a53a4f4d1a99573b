"""Button flows in the web widget, in real Chromium against a real ``okno serve`` with the
demo knowledge base, flows and branch/ATM directory imported by the CLI.

A customer asks how to block a card and gets the flow's question with buttons; pressing one
sends its label and the flow goes on, and the old buttons stay as a record, disabled. Asking
for the nearest ATM offers "share location"; with the browser's location granted the bot
answers with the nearest ATMs as cards, with distances. A customer signed in to the bank's
site (a token the bank signed, given to the widget by the page) gets their balance from the
bank's gateway; an anonymous visitor is handed to a person instead. Screenshots land in
``test-artifacts/`` (two are used in docs/flows.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from okno.bot.text import DATA
from tests.bot.test_flows import SECRET, Backend
from tests.builders import WIDGET_KEY
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TVERSKAYA = {"latitude": 55.7611, "longitude": 37.6088}


@pytest.fixture
def gateway() -> Iterator[Backend]:
    """The bank's self-service gateway (a real HTTP server on loopback)."""
    fake = Backend()
    yield fake
    fake.server.shutdown()


def demo_bank(folder: Path) -> None:
    """The personas, the widget with the bot and the bank's identity secret, and the demo
    knowledge base, flows and places, imported by the CLI."""
    seeded(folder)
    env = srv.okno_env(folder)
    srv.run_cli(
        ["channels", "update", WIDGET_KEY, "--bot", "--identity-secret", SECRET, "--json"], env
    )
    for command, name in (
        ("kb", "demo_kb.yaml"),
        ("flows", "demo_flows.yaml"),
        ("places", "demo_places.csv"),
    ):
        out = srv.run_cli([command, "import", str(DATA / name), "--json"], env)
        assert json.loads(out.stdout)["created"] > 0, out.stdout


@pytest.fixture
def bank(prepared_data: b.Prepare, gateway: Backend) -> Iterator[srv.OknoServer]:
    data_dir = prepared_data("demo-bank", demo_bank)
    with b.serving(data_dir, {"OKNO_BOT_ACTIONS_URL": gateway.url}) as server:
        yield server


async def ask(page: Any, text: str) -> None:
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    await b.customer_types(page, text)


async def test_flow_buttons_lead_the_customer_and_old_ones_are_disabled(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await ask(page, "как заблокировать карту")
    question = b.widget_messages(page, "bot").filter(has_text="Что случилось с картой?")
    await question.wait_for()
    labels = await question.locator("[data-okno=bot-button]").all_inner_texts()
    assert labels == [
        "Хочу заблокировать на время",
        "Карту потеряли или украли",
        "Вижу чужие операции",
        "Позвать оператора",
    ]
    await page.locator("[data-okno=window]").screenshot(path=b.shot("widget-flow-buttons.png"))
    await question.locator("[data-okno=bot-button]", has_text="Хочу заблокировать на время").click()
    # the press is the customer's message; the flow answers and asks the next question
    await (
        b.widget_messages(page, "customer")
        .filter(has_text="Хочу заблокировать на время")
        .wait_for()
    )
    follow_up = b.widget_messages(page, "bot").filter(has_text="Могу ещё чем-то помочь?")
    await follow_up.wait_for()
    assert await question.locator("[data-okno=bot-button]").first.is_disabled()
    assert await follow_up.locator("[data-okno=bot-button]").first.is_enabled()
    await follow_up.locator("[data-okno=bot-button]", has_text="Нет, спасибо").click()
    await b.widget_messages(page, "bot").filter(has_text="Хорошего дня!").wait_for()
    assert page.errors == []


async def test_shared_location_shows_the_nearest_atms_with_distances(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await page.context.grant_permissions(["geolocation"], origin=bank.url)
    await page.context.set_geolocation(TVERSKAYA)
    await ask(page, "где ближайший банкомат")
    share = page.locator("[data-okno=share-location]")
    await share.wait_for()
    await share.click()
    await b.widget_messages(page, "customer").filter(has_text="Моё местоположение").wait_for()
    cards = page.locator("[data-okno=place]")
    await cards.first.wait_for()
    assert await cards.count() == 3
    first = await cards.first.inner_text()
    # Pushkinskaya square is ~0.5 km from Tverskaya, 12: the nearest of the demo ATMs
    assert "Банкомат у м. Пушкинская" in first and " м" in first, first
    assert "круглосуточно" in first
    await b.widget_messages(page, "bot").filter(has_text="без комиссии").wait_for()
    await page.locator("[data-okno=window]").screenshot(path=b.shot("widget-flow-places.png"))
    assert page.errors == []


async def test_a_signed_in_customer_gets_the_balance_from_the_bank(
    bank: srv.OknoServer, chromium: Any, gateway: Backend
) -> None:
    now = datetime.now(UTC)
    signed = jwt.encode(
        {"sub": "C-777", "iat": now, "exp": now + timedelta(minutes=15)}, SECRET, "HS256"
    )
    context = await chromium.new_context(locale="ru-RU")
    # what the bank's page does for a signed-in customer, before widget.js loads
    await context.add_init_script(f"window.OknoWidget = {{ customerToken: {json.dumps(signed)} }};")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.errors = b.watch_errors(page)
    await page.goto(f"{bank.url}/demo?key={WIDGET_KEY}")
    await page.locator("[data-okno=bubble]").click()
    await ask(page, "какой у меня баланс")
    await (
        b.widget_messages(page, "bot")
        .filter(has_text="Баланс карты •• 4417: 12 345,67 ₽.")
        .wait_for()
    )
    assert [r["json"]["customer_id"] for r in gateway.requests] == ["C-777"]

    # the same page for an anonymous visitor: no bank call, a person instead
    anonymous = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await ask(anonymous, "какой у меня баланс")
    await (
        b.widget_messages(anonymous, "system")
        .filter(has_text="после входа в интернет-банк")
        .wait_for()
    )
    assert len(gateway.requests) == 1
    assert page.errors == [] and anonymous.errors == []


async def test_web_addresses_in_bot_answers_are_links_and_nothing_else_is(
    bank: srv.OknoServer, chromium: Any
) -> None:
    article = """
articles:
  - id: tariffs-link
    title: Тарифы по картам на сайте
    questions: ["где посмотреть тарифы по картам на сайте"]
    answer: "Тарифы: https://bank.example/tariffs?card=1. А это не ссылка: javascript:alert(1)"
    topic: cards
"""
    async with httpx.AsyncClient(base_url=bank.url, timeout=30) as http:
        imported = await http.post(
            "/api/v1/kb/import",
            content=article.encode(),
            headers={**token(bank, "root"), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 200, imported.text
        # the old index answers until the new one is built (in the background)
        for _ in range(120):
            asked = await http.post(
                "/api/v1/bot/ask",
                json={"text": "где посмотреть тарифы по картам на сайте"},
                headers=token(bank, "root"),
            )
            if asked.json().get("article_id") == "tariffs-link":
                break
            await asyncio.sleep(0.5)
    page = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    await b.customer_types(page, "где посмотреть тарифы по картам на сайте")
    answer = b.widget_messages(page, "bot").filter(has_text="Тарифы:")
    await answer.wait_for()
    links = answer.locator("a[data-okno=link]")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://bank.example/tariffs?card=1"
    assert await links.get_attribute("rel") == "noopener noreferrer"
    assert "javascript:alert(1)" in await answer.inner_text()
    assert page.errors == []
