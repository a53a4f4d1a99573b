"""End to end across a messenger: a Telegram update reaches a real ``okno serve``; the bot,
unsure, suggests likely questions as buttons; the customer asks for a person; Анна is
notified in the workspace in Chromium, answers, and her answer leaves as a ``sendMessage``
call to the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from okno.channels import service as channels
from okno.settings import load_settings
from tests import services
from tests.builders import PASSWORD, in_db
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, callback_update, message_update
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECRET = "e2e-webhook-secret"
CHAT = 700100


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


@pytest.fixture
def bank(tmp_path: Path, fake: FakeTelegram) -> Iterator[tuple[srv.OknoServer, int]]:
    """The personas, and a Telegram channel with the bot on, pointed at the fake."""
    seeded(tmp_path)
    settings = load_settings(data_dir=tmp_path, secret_key=srv.SECRET_KEY)

    async def add(session: Any) -> int:
        channel = await channels.add_messenger(
            session,
            kind="telegram",
            values={"bot_token": TOKEN, "webhook_secret": SECRET, "api_base": fake.url, "bot": True},
            signing_key=settings.signing_key(),
            name="Банк в Telegram",
        )
        return channel.id

    channel_id = in_db(settings, add)
    # A vague message must leave the bot unsure on this four-article base whatever the
    # default threshold is tuned to for the demo base.
    with b.serving(tmp_path, {"OKNO_BOT_ANSWER_THRESHOLD": "0.4"}) as server:
        from tests.bot.test_flows import KB

        imported = httpx.post(
            f"{server.url}/api/v1/kb/import",
            content=KB.encode(),
            headers={**token(server, "root"), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 200, imported.text
        yield server, channel_id


def deliver(server: srv.OknoServer, channel_id: int, update: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/hooks/telegram/{channel_id}",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 200, response.text


async def test_telegram_customer_bot_suggestions_operator_answer_back_in_telegram(
    bank: tuple[srv.OknoServer, int], fake: FakeTelegram, chromium: Any
) -> None:
    services.require_chromium()
    server, channel_id = bank
    anna = await b.staff_page(chromium, server.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()

    deliver(server, channel_id, message_update("проблема с картой", chat_id=CHAT))
    (question,) = fake.wait_for("/sendMessage")
    rows = question.json()["reply_markup"]["inline_keyboard"]
    assert [r[0]["text"] for r in rows][-1] == "👤 Позвать оператора"
    assert "Как заблокировать карту" in [r[0]["text"] for r in rows]
    # The customer wants a person.
    deliver(server, channel_id, callback_update(rows[-1][0]["callback_data"], chat_id=CHAT))

    item = anna.locator("[data-okno=conv]").filter(has_text="Иван Петров")
    await item.wait_for()
    shown = await b.notifications(anna)
    assert "Новый диалог" in [n["title"] for n in shown], shown
    await item.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator(
        "[data-okno=message][data-author=customer]", has_text="проблема с картой"
    ).wait_for()
    # The bot's question and its buttons are in the transcript, as the customer saw them.
    await dialog.locator("[data-okno=message][data-author=bot]", has_text="Уточните").wait_for()

    answer = "Здравствуйте, Иван! Расскажите, что случилось с картой?"
    reply = dialog.locator("[data-okno=reply]")
    await reply.fill(answer)
    await reply.press("Enter")
    calls = fake.wait_for("/sendMessage", 3)
    assert calls[-1].json() == {"chat_id": str(CHAT), "text": answer}
    assert calls[-1].path == f"/bot{TOKEN}/sendMessage"
    assert fake.texts_to(CHAT)[-1] == answer
    await anna.screenshot(path=b.shot("workspace-telegram.png"))
    assert anna.errors == []
