"""Messenger channels as people see them, in real Chromium against a real ``okno serve``
process and a fake Telegram Bot API on loopback.

An admin adds a Telegram channel on the Каналы page, checks it (the bot's @username comes
back from getMe), registers the webhook and sees a forged call and a wrong token in the
recent errors. An operator's answer to a customer who blocked the bot shows "не доставлено"
while one to another customer gets its ✓. An operator links the Telegram customer with the
same person's web chat, and the card shows both channels. Screenshots land in
``test-artifacts/`` (copied to docs/img for docs/channels.md and docs/staff-guide.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.builders import PASSWORD, WIDGET_KEY
from tests.channels.fakes.telegram import BOT, TOKEN, FakeTelegram, message_update, user
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PUBLIC = "https://okno.bank.example"
SECRET = "wh-secret_0123456789"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The personas (anna, igor, olga, sveta, root) and the widget ``acme``; okno knows its
    public address."""
    with b.serving(prepared_data("staff", seeded), extra_env={"OKNO_PUBLIC_URL": PUBLIC}) as server:
        yield server


@pytest.fixture
def local(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The same people, okno without a public address."""
    with b.serving(prepared_data("staff", seeded)) as server:
        yield server


def add_telegram(server: srv.OknoServer, fake: FakeTelegram) -> int:
    response = httpx.post(
        f"{server.url}/api/v1/channels",
        json={
            "kind": "telegram",
            "name": "Банк в Telegram",
            "settings": {"bot_token": TOKEN, "webhook_secret": SECRET, "api_base": fake.url},
        },
        headers=token(server, "root"),
    )
    assert response.status_code == 201, response.text
    channel_id: int = response.json()["id"]
    return channel_id


def customer_writes(server: srv.OknoServer, channel_id: int, update: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/hooks/telegram/{channel_id}",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 200, response.text


async def test_admin_adds_checks_and_watches_a_telegram_channel(
    floor: srv.OknoServer, fake: FakeTelegram, chromium: Any
) -> None:
    root = await b.staff_page(chromium, floor.url, "root", PASSWORD, path="/channels")
    await root.locator("[data-okno=channel-row][data-kind=widget]").wait_for()

    # Add: the form is built from Telegram's settings; a missing token is named at its field.
    form = root.locator("[data-okno=new-channel-form]")
    assert await root.locator("[data-okno=new-kind]").input_value() == "telegram"
    assert await form.locator("[name=mode]").input_value() == "webhook"
    await form.locator("[name=name]").fill("Банк в Telegram")
    await form.locator("[name=webhook_secret]").fill(SECRET)
    await form.locator("[name=api_base]").fill(fake.url)
    await form.locator("[data-okno=submit]").click()
    await form.locator("[data-error-for=bot_token]", has_text="нужно заполнить").wait_for()
    await form.locator("[name=bot_token]").fill(TOKEN)
    await form.locator("[data-okno=submit]").click()

    row = root.locator("[data-okno=channel-row][data-kind=telegram]")
    await row.wait_for()
    assert "Банк в Telegram" in await row.inner_text()
    assert await row.locator("[data-okno=channel-state]").get_attribute("data-active") == "true"
    panel = root.locator("[data-okno=channel-detail-panel]")
    await panel.wait_for()
    channel_id = int(await panel.get_attribute("data-id") or 0)
    # the token is never shown again, only that it is set; the new form is empty again
    secret_states = panel.locator("[data-okno=secret-state][data-set=true]")
    assert await secret_states.count() == 2
    assert await panel.locator("[name=bot_token]").input_value() == ""
    assert TOKEN not in await root.content()
    assert await form.locator("[name=bot_token]").input_value() == ""

    # The address to give Telegram, and okno registers it itself.
    address = f"{PUBLIC}/hooks/telegram/{channel_id}"
    await panel.locator("[data-okno=webhook-url]", has_text=address).wait_for()
    await panel.locator("[data-okno=webhook-set]").click()
    await panel.locator("[data-okno=webhook-result]", has_text=address).wait_for()
    assert fake.webhook["url"] == address and fake.webhook["secret_token"] == SECRET

    # Check: the platform answers with the bot's @username.
    await panel.locator("[data-okno=errors-none]").wait_for()
    await panel.locator("[data-okno=check]").click()
    result = panel.locator("[data-okno=check-result][data-ok=true]")
    await result.wait_for()
    assert f"@{BOT['username']}" in await result.inner_text()

    # A forged call (a wrong secret) is refused and shows in the recent errors.
    forged = httpx.post(
        f"{floor.url}/hooks/telegram/{channel_id}",
        json=message_update("Срочно переведите деньги"),
        headers={"X-Telegram-Bot-Api-Secret-Token": "guessed"},
    )
    assert forged.status_code == 403
    await panel.locator("[data-okno=errors-refresh]").click()
    error = panel.locator("[data-okno=channel-error][data-kind=webhook]")
    await error.wait_for()
    assert "входящий вызов" in await error.inner_text()
    await root.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await panel.screenshot(path=b.shot("channels-page.png"))
    await root.evaluate("document.querySelector('.page').scrollTop = 0")
    await root.screenshot(path=b.shot("channels-list.png"))

    # A wrong token: the check says what Telegram said, and the error joins the list.
    await panel.locator("[name=bot_token]").fill("999:wrong-token")
    await panel.locator("[data-okno=submit]").click()
    await root.locator(".toast", has_text="Сохранено").wait_for()
    panel = root.locator("[data-okno=channel-detail-panel]")
    await panel.locator("[data-okno=check]").click()
    failed = panel.locator("[data-okno=check-result][data-ok=false]")
    await failed.wait_for()
    assert "Unauthorized" in await failed.inner_text()
    await panel.locator("[data-okno=channel-error][data-kind=check]").wait_for()

    # Switched off: Telegram's calls are refused from now on.
    await panel.locator("[name=is_active]").uncheck()
    await panel.locator("[data-okno=submit]").click()
    await row.locator("[data-okno=channel-state][data-active=false]").wait_for()
    off = httpx.post(
        f"{floor.url}/hooks/telegram/{channel_id}",
        json=message_update("Алло"),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert off.status_code == 404
    assert root.errors == [] and root.dialogs == []


async def test_an_answer_to_a_customer_who_blocked_the_bot_shows_not_delivered(
    floor: srv.OknoServer, fake: FakeTelegram, chromium: Any
) -> None:
    channel_id = add_telegram(floor, fake)
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()

    fake.blocked.add(555061)
    customer_writes(
        floor,
        channel_id,
        message_update(
            "Не проходит оплата", chat_id=555061, sender=user(555061, "Олег", "Смирнов")
        ),
    )
    item = anna.locator("[data-okno=conv]", has_text="Олег Смирнов")
    await item.wait_for()
    assert await item.locator("[data-okno=conv-kind]").inner_text() == "Telegram"
    await item.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=message][data-author=customer]", has_text="оплата").wait_for()
    assert "Telegram · Банк в Telegram" in await dialog.locator(".dialog-head").inner_text()

    await dialog.locator("[data-okno=reply]").fill("Проверяю платёж, минуту")
    await dialog.locator("[data-okno=reply]").press("Enter")
    answer = dialog.locator("[data-okno=message][data-author=operator]", has_text="Проверяю")
    mark = answer.locator("[data-okno=msg-status][data-status=undelivered]")
    await mark.wait_for()
    assert "не доставлено" in await mark.inner_text()
    assert fake.texts_to(555061) == []

    # Another customer's answer goes out: ✓ (Telegram reports nothing more to bots).
    customer_writes(
        floor,
        channel_id,
        message_update("Как открыть вклад?", chat_id=555062, sender=user(555062, "Вера", "Орлова")),
    )
    other = anna.locator("[data-okno=conv]", has_text="Вера Орлова")
    await other.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=message][data-author=customer]", has_text="вклад").wait_for()
    await dialog.locator("[data-okno=reply]").fill("В приложении, раздел «Вклады»")
    await dialog.locator("[data-okno=reply]").press("Enter")
    sent = dialog.locator("[data-okno=message][data-author=operator]", has_text="Вклады")
    await sent.locator("[data-okno=msg-status][data-status=sent]", has_text="✓").wait_for()
    fake.wait_for("/sendMessage")
    assert fake.texts_to(555062) == ["В приложении, раздел «Вклады»"]
    await anna.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")

    # Back in the first dialog the failure is still there (read from the server, not memory).
    await anna.reload()
    await anna.locator("[data-okno=conv]", has_text="Олег Смирнов").click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=msg-status][data-status=undelivered]").wait_for()
    await anna.screenshot(path=b.shot("workspace-not-delivered.png"))
    assert anna.errors == [] and anna.dialogs == []


async def test_operator_links_the_telegram_customer_with_their_web_chat(
    local: srv.OknoServer, fake: FakeTelegram, chromium: Any
) -> None:
    floor = local  # the demo page loads the widget from okno's own address
    channel_id = add_telegram(floor, fake)
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    customer_writes(floor, channel_id, message_update("Заблокировали карту", chat_id=555071))
    await anna.locator("[data-okno=conv]", has_text="Иван Петров").wait_for()

    # The same person writes in the web chat later, without giving a name.
    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(customer, "Я писал в Telegram про карту")
    web_item = anna.locator("[data-okno=conv]", has_text="Клиент #")
    await web_item.wait_for()
    await web_item.click()
    card = anna.locator("[data-okno=customer-card]")
    await card.locator("[data-okno=tl-msg]", has_text="писал в Telegram").wait_for()

    await card.locator("[data-okno=link-open]").click()
    await card.locator("[data-okno=link-query]").fill("иван")
    candidate = card.locator("[data-okno=link-candidate]", has_text="Иван Петров")
    await candidate.wait_for()
    assert "555071" in await candidate.inner_text()
    await anna.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await anna.screenshot(path=b.shot("workspace-link-customer.png"))
    await candidate.locator("[data-okno=link-do]").click()

    # One card: the real name, both channels, both dialogs on the history.
    await card.locator("[data-okno=card-name]", has_text="Иван Петров").wait_for()
    identities = card.locator("[data-okno=identities]")
    await identities.locator(".chan[data-kind=telegram]").wait_for()
    assert await identities.locator(".chan[data-kind=widget]").count() == 1
    await card.locator("[data-okno=tl-msg]", has_text="Заблокировали карту").wait_for()
    assert await card.locator("[data-okno=tl-dialog]").count() == 2
    # the dialog's header follows the new name without a reload
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=dialog-customer]", has_text="Иван Петров").wait_for()
    assert anna.errors == [] and anna.dialogs == []
    assert customer.errors == []
