"""The staff web UI in real Chromium against a real ``okno serve`` process.

A customer writes on the demo bank page; Анна, signed in to the workspace, is notified,
opens the dialog, sees the customer card, answers with a template whose placeholders are
filled in, and transfers the dialog to Игорь, who closes it; the customer rates it. The
supervisor watches it all on the live board. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from okno.db import migrate
from okno.settings import load_settings
from tests import services
from tests.builders import PASSWORD, WIDGET_KEY, seed_staff
from tests.e2e import browser as b
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def seeded(data_dir: Path) -> Any:
    """The test personas and the widget ``acme`` in a fresh database; returns its settings."""
    services.require_chromium()
    settings = load_settings(data_dir=data_dir)
    services.run_in_thread(lambda: migrate.upgrade(settings))
    services.run_in_thread(lambda: seed_staff(settings))
    return settings


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """anna and igor (team Поддержка), olga (Кредиты), sveta (supervisor of all), root
    (admin), and the widget ``acme``."""
    with b.serving(prepared_data("staff", seeded)) as server:
        yield server


def token(server: srv.OknoServer, login: str) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token", json={"login": login, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def conversation(server: srv.OknoServer, conversation_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/v1/conversations/{conversation_id}", headers=token(server, "root")
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_customer_to_operator_to_colleague_and_back_to_the_customer(
    floor: srv.OknoServer, chromium: Any
) -> None:
    # Анна keeps a personal template with placeholders.
    created = httpx.post(
        f"{floor.url}/api/v1/saved-replies",
        json={
            "scope": "personal",
            "shortcut": "hello",
            "title": "Приветствие",
            "body": "Здравствуйте, {{customer.first_name}}! Меня зовут {{operator.first_name}}, "
            "сейчас помогу.",
        },
        headers=token(floor, "anna"),
    )
    assert created.status_code == 201, created.text

    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    igor = await b.staff_page(chromium, floor.url, "igor", PASSWORD)
    sveta = await b.staff_page(chromium, floor.url, "sveta", PASSWORD, path="/supervisor")
    for page in (anna, igor, sveta):
        await page.locator("[data-okno=conn][data-state=online]").wait_for()

    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(customer, "Здравствуйте! Не приходит СМС с кодом для входа")

    # Routing gives it to Анна (both are free; ties go to the longest idle, then the
    # first): a desktop notification and the dialog in her list, live, without a click.
    item = anna.locator("[data-okno=conv]").filter(has_text="Не приходит СМС")
    await anna.locator("[data-okno=count-mine]", has_text="1").wait_for()
    await item.wait_for()
    shown = await b.notifications(anna)
    assert [n["title"] for n in shown] == ["Новый диалог"], shown
    assert await anna.locator(".toast", has_text="Новый диалог").count() == 1
    # The supervisor's board counts it in progress, without a reload; Игорь is not
    # disturbed by a dialog that routing gave to someone at once.
    await sveta.locator("[data-okno=tile-in-progress] .v", has_text="1").wait_for()
    assert await b.notifications(igor) == []

    await item.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=message][data-author=customer]", has_text="СМС").wait_for()
    conversation_id = int(await dialog.get_attribute("data-conversation") or 0)
    assert anna.url.endswith(f"/c/{conversation_id}")

    # The customer card: the widget identity (masked), the dialog on the timeline.
    card = anna.locator("[data-okno=customer-card]")
    await card.locator("[data-okno=identities]", has_text="Acme Bank").wait_for()
    assert "•••" in await card.locator("[data-okno=identities]").inner_text()
    await card.locator("[data-okno=tl-msg]", has_text="Не приходит СМС").wait_for()
    # The customer introduced herself; Анна writes her name on the card.
    await card.locator("[data-okno=card-edit-open]").click()
    await card.locator("[data-okno=card-name-input]").fill("Мария Иванова")
    await card.locator("[data-okno=card-edit] button[type=submit]").click()
    await anna.locator("[data-okno=card-name]", has_text="Мария Иванова").wait_for()

    # "/hel" offers the template; Enter puts it in with the placeholders filled.
    reply = dialog.locator("[data-okno=reply]")
    await reply.fill("/hel")
    await reply.press("End")  # fill() sets the value; a key press fires the input handler
    await reply.type("l")
    await dialog.locator("[data-okno=template]", has_text="Приветствие").wait_for()
    await reply.press("Enter")
    expected = "Здравствуйте, Мария! Меня зовут Анна, сейчас помогу."
    await anna.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.value === text",
        arg=["[data-okno=dialog-view]:not([hidden]) [data-okno=reply]", expected],
    )
    await reply.press("Enter")
    await b.widget_messages(customer, "operator").filter(has_text=expected).wait_for()
    # The widget is open in front of the customer: the answer turns "read" for Анна.
    mine = dialog.locator("[data-okno=message][data-author=operator]", has_text="Мария")
    await mine.locator("[data-okno=msg-status][data-status=read]").wait_for()
    await anna.locator("[data-okno=filter][data-filter=mine]").click()
    await anna.locator("[data-okno=conv]", has_text="Мария Иванова").wait_for()
    await anna.screenshot(path=b.shot("workspace-dialog.png"))

    # Topic, tags and a note about the customer; the board groups the dialog by topic.
    await dialog.locator("[data-okno=topic]").fill("Вход в приложение")
    await dialog.locator("[data-okno=tags]").fill("смс, приложение")
    await dialog.locator("[data-okno=tags]").press("Enter")
    await sveta.locator("[data-okno=queue-row]", has_text="Вход в приложение").wait_for()
    await card.locator("[data-okno=note-input]").fill("Предпочитает общение в чате")
    await card.locator("[data-okno=note-form] button[type=submit]").click()
    await card.locator("[data-okno=notes]", has_text="Предпочитает общение в чате").wait_for()

    # The supervisor opens the dialog read-only and whispers to Анна.
    await sveta.locator("[data-okno=open-dialog]", has_text="Мария Иванова").click()
    viewer = sveta.locator("[data-okno=viewer]")
    await viewer.locator("[data-okno=message][data-author=operator]", has_text=expected).wait_for()
    assert await viewer.locator("[data-okno=take]").count() == 0
    await viewer.locator("[data-okno=reply]").fill("Предложи ей сменить номер в приложении")
    await viewer.locator("[data-okno=reply]").press("Enter")
    await dialog.locator(
        "[data-okno=message][data-internal=true]", has_text="Предложи ей сменить номер"
    ).wait_for()
    await sveta.locator("[data-okno=tile-in-progress] .v", has_text="1").wait_for()
    await sveta.screenshot(path=b.shot("supervisor-board.png"))

    # Transfer to Игорь with a comment; he is notified and sees the comment.
    await dialog.locator("[data-okno=transfer]").click()
    modal = anna.locator("[data-okno=modal]")
    await modal.locator("[data-okno=transfer-user]").select_option(label="Игорь")
    await modal.locator("[data-okno=transfer-comment]").fill("Клиентка просит перезвонить")
    await modal.locator("[data-okno=modal-submit]").click()
    await dialog.locator("[data-okno=assignee]", has_text="Игорь").wait_for()

    await igor.locator("[data-okno=count-mine]", has_text="1").wait_for()
    shown = await b.notifications(igor)
    assert "Вам передан диалог" in [n["title"] for n in shown], shown
    await igor.locator("[data-okno=conv]", has_text="Мария Иванова").click()
    igor_dialog = igor.locator("[data-okno=dialog-view]:visible")
    await igor_dialog.locator(
        "[data-okno=message][data-author=system]", has_text="Клиентка просит перезвонить"
    ).wait_for()
    await igor_dialog.locator("[data-okno=close]").click()
    await igor.locator("[data-okno=resolution][value=resolved]").check()
    await igor.locator("[data-okno=modal-submit]").click()
    await igor_dialog.locator("[data-okno=dialog-status][data-status=closed]").wait_for()

    # The customer rates the dialog; the rating reaches the staff side.
    await customer.locator("[data-okno=rating]").wait_for()
    await customer.locator("[data-okno=star][data-score='5']").click()
    await customer.locator("[data-okno=rated]").wait_for()
    final = conversation(floor, conversation_id)
    assert (final["status"], final["resolution"], final["rating"]) == ("closed", "resolved", 5)
    assert final["assignee"]["name"] == "Игорь"
    await igor_dialog.locator("[data-okno=rating]").wait_for()
    await sveta.locator("[data-okno=tile-in-progress] .v", has_text="0").wait_for()

    # Reopened, it is Игорь's again, with its topic and tags kept.
    await igor_dialog.locator("[data-okno=reopen]").click()
    await igor_dialog.locator("[data-okno=dialog-status][data-status=assigned]").wait_for()
    reopened = conversation(floor, conversation_id)
    assert (reopened["assignee"]["name"], reopened["topic"]) == ("Игорь", "Вход в приложение")
    assert reopened["tags"] == ["смс", "приложение"]

    for page in (anna, igor, sveta, customer):
        assert page.errors == [], page.errors
        assert page.dialogs == []


XSS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]


async def test_markup_from_a_customer_is_text_in_the_workspace(
    floor: srv.OknoServer, chromium: Any
) -> None:
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    for text in XSS:
        await b.customer_types(customer, text)
        await b.widget_messages(customer, "customer").filter(has_text=text).wait_for()

    item = anna.locator("[data-okno=conv]").first  # routed to her, the only one online
    await item.wait_for()
    await item.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    for text in XSS:
        await dialog.locator("[data-okno=message]", has_text=text).wait_for()
    await anna.locator("[data-okno=tl-msg]", has_text=XSS[0]).wait_for()
    # The operator quotes it back; the customer sees the same characters.
    await dialog.locator("[data-okno=reply]").fill(f"Вы написали: {XSS[0]}")
    await dialog.locator("[data-okno=reply]").press("Enter")
    await b.widget_messages(customer, "operator").filter(has_text=XSS[0]).wait_for()
    await asyncio.sleep(0.5)  # an onerror handler would have fired by now

    assert await anna.locator("[data-okno=messages] img").count() == 0
    assert await anna.locator("[data-okno=messages] script").count() == 0
    assert anna.dialogs == [] and customer.dialogs == []
    assert anna.errors == [] and customer.errors == []


async def test_a_dialog_of_another_team_is_refused_by_url_and_logged(
    floor: srv.OknoServer, chromium: Any
) -> None:
    async with httpx.AsyncClient(base_url=floor.url) as http:
        session = (
            await http.post("/api/v1/widget/sessions", json={"widget_key": WIDGET_KEY})
        ).json()
        sent = await http.post(
            "/api/v1/widget/messages",
            json={"client_msg_id": "m1", "text": "Вопрос по карте"},
            headers={"Authorization": f"Bearer {session['session_token']}"},
        )
        conversation_id = sent.json()["message"]["conversation_id"]
        taken = await http.post(
            f"/api/v1/conversations/{conversation_id}/assign",
            json={},
            headers=token(floor, "anna"),
        )
        assert taken.status_code == 200  # now it belongs to Анна's team, Поддержка

    olga = await b.staff_page(chromium, floor.url, "olga", PASSWORD)  # team Кредиты
    response = await olga.goto(f"{floor.url}/c/{conversation_id}")
    assert response is not None and response.status == 403
    await olga.locator("[data-okno=forbidden]").wait_for()
    assert "Вопрос по карте" not in await olga.content()
    api = await olga.evaluate(
        "id => fetch(`/api/v1/conversations/${id}/messages`).then(r => r.status)",
        conversation_id,
    )
    assert api == 403
    # The workspace's own list never offered it either.
    await olga.goto(f"{floor.url}/")
    await olga.locator("[data-okno=conn][data-state=online]").wait_for()
    assert await olga.locator("[data-okno=conv]").count() == 0

    await asyncio.sleep(0.3)
    denied = [
        json.loads(line)
        for line in floor.log_path.read_text().splitlines()
        if line.startswith("{") and '"access.denied"' in line
    ]
    olga_id = httpx.get(f"{floor.url}/api/v1/me", headers=token(floor, "olga")).json()["id"]
    seen = {(d.get("user_id"), d.get("conversation_id"), d.get("page")) for d in denied}
    assert seen >= {(olga_id, conversation_id, "dialog"), (olga_id, conversation_id, None)}, denied


HISTORY = 2000
DIALOGS = 20
SENDS = 10


async def _busy_day(settings: Any) -> None:
    """Анна serves 20 dialogs; the first has 2,000 messages of history."""
    from okno.channels import service as channels
    from okno.conversations import actions, inbound
    from okno.db.session import Database
    from okno.operators.models import User

    db = Database(settings)
    try:
        async with db.transaction() as s:
            channel = await channels.get_widget(s, key=WIDGET_KEY)
            anna = (await s.execute(select_user("anna"))).scalar_one()
            heavy = 0
            for i in range(DIALOGS):
                message, _ = await inbound.receive(
                    s,
                    inbound.Inbound(
                        channel=channel,
                        external_customer_id=f"busy-visitor-{i:02d}",
                        text=f"Вопрос номер {i}",
                        client_msg_id=f"first-{i}",
                    ),
                )
                await actions.assign(
                    s, conversation_id=message.conversation_id, actor=anna, user_id=None
                )
                heavy = heavy or message.conversation_id
        for batch in range(HISTORY // 200):
            async with db.transaction() as s:
                anna = await s.get(User, anna.id)
                assert anna is not None
                for j in range(100):
                    n = batch * 100 + j
                    await inbound.receive(
                        s,
                        inbound.Inbound(
                            channel=channel,
                            external_customer_id="busy-visitor-00",
                            text=f"Сообщение клиента {n}: подскажите, пожалуйста, по переводу",
                            client_msg_id=f"h-{n}",
                        ),
                    )
                    await actions.post_message(
                        s,
                        conversation_id=heavy,
                        actor=anna,
                        text=f"Ответ оператора {n}: проверяю ваш перевод",
                        client_msg_id=f"r-{n}",
                    )
    finally:
        await db.dispose()


def select_user(login: str) -> Any:
    from sqlalchemy import select

    from okno.operators.models import User

    return select(User).where(User.login == login)


# Paints of a message containing the marker, stamped on the browser's clock (epoch ms).
PAINT_WATCH = """
marker => new Promise(resolve => {
  const seen = () => [...document.querySelectorAll("[data-okno=dialog-view]:not([hidden]) [data-okno=message]")]
    .some(el => el.textContent.includes(marker));
  const obs = new MutationObserver(() => {
    if (seen()) {
      obs.disconnect();
      requestAnimationFrame(() => resolve(performance.timeOrigin + performance.now()));
    }
  });
  obs.observe(document.body, { childList: true, subtree: true });
})
"""


@pytest.fixture
def busy(tmp_path: Path, prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    settings = load_settings(data_dir=prepared_data("staff", seeded))
    services.run_in_thread(lambda: _busy_day(settings))
    with b.serving(tmp_path) as server:
        yield server


async def test_twenty_dialogs_and_two_thousand_messages_stay_responsive(
    busy: srv.OknoServer,
) -> None:
    """Prints send-to-paint times; the budget is a person's patience, not a CI timer, so
    the test asserts only that every message arrived, once, in the right tab."""
    import time

    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await b.launch(pw)
        try:
            anna = await b.staff_page(browser, busy.url, "anna", PASSWORD)
            await anna.locator("[data-okno=count-mine]", has_text=str(DIALOGS)).wait_for()
            items = anna.locator("[data-okno=conv]")
            heavy_item = items.filter(has_text="проверяю ваш перевод")
            opened_at = time.perf_counter()
            await heavy_item.click()
            view = anna.locator("[data-okno=dialog-view]:visible")
            await view.locator(
                "[data-okno=message]", has_text=f"Ответ оператора {HISTORY // 2 - 1}:"
            ).wait_for()
            open_ms = (time.perf_counter() - opened_at) * 1000
            heavy_id = int(await view.get_attribute("data-conversation") or 0)
            for i in range(DIALOGS):
                await items.nth(i).click()
            # a tab appears once its dialog has loaded: wait for the last one
            await anna.locator("[data-okno=tab]").nth(DIALOGS - 1).wait_for()
            assert await anna.locator("[data-okno=tab]").count() == DIALOGS
            await anna.locator(f"[data-okno=tab][data-id='{heavy_id}']").click()
            # the earlier history is there on demand
            await view.locator("[data-okno=load-earlier]").click()
            await view.locator("[data-okno=message]", has_text="Сообщение клиента 915:").wait_for()

            async with httpx.AsyncClient(base_url=busy.url) as http:
                session = (
                    await http.post(
                        "/api/v1/widget/sessions",
                        json={"widget_key": WIDGET_KEY, "visitor": {"id": "busy-visitor-00"}},
                    )
                ).json()
                assert session["conversation_id"] == heavy_id
                auth = {"Authorization": f"Bearer {session['session_token']}"}
                latencies = []
                for n in range(SENDS):
                    marker = f"Проверка скорости {n}"
                    painted = asyncio.ensure_future(anna.evaluate(PAINT_WATCH, marker))
                    await asyncio.sleep(0.05)  # the observer is in place
                    sent_at = time.time() * 1000
                    response = await http.post(
                        "/api/v1/widget/messages",
                        json={"client_msg_id": f"speed-{n}", "text": marker},
                        headers=auth,
                    )
                    assert response.status_code == 201, response.text
                    latencies.append(await asyncio.wait_for(painted, 10) - sent_at)
            for n in range(SENDS):
                assert (
                    await view.locator(
                        "[data-okno=message]", has_text=f"Проверка скорости {n}"
                    ).count()
                    == 1
                )
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            print(
                f"\nworkspace with {DIALOGS} open tabs and {HISTORY} messages of history: "
                f"open heavy dialog {open_ms:.0f} ms; customer send -> painted on the operator's "
                f"screen p50 {p50:.0f} ms, max {latencies[-1]:.0f} ms over {SENDS} sends"
            )
            await anna.screenshot(path=b.shot("workspace-busy.png"))
            assert anna.errors == []
        finally:
            await browser.close()


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def test_two_dialogs_keep_their_drafts_typing_shows_both_ways_and_files_go_out(
    floor: srv.OknoServer, chromium: Any
) -> None:
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    sveta = await b.staff_page(chromium, floor.url, "sveta", PASSWORD, path="/supervisor")
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    first = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(first, "Первый вопрос: лимит по карте")
    second = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(second, "Второй вопрос: вклад")

    await anna.locator("[data-okno=conv]", has_text="лимит по карте").click()
    view_a = anna.locator("[data-okno=dialog-view]:visible")
    id_a = await view_a.get_attribute("data-conversation")
    await view_a.locator("[data-okno=reply]").fill("Черновик для первого")
    await anna.locator("[data-okno=conv]", has_text="Второй вопрос").click()
    view_b = anna.locator("[data-okno=dialog-view]:visible")
    assert await view_b.get_attribute("data-conversation") != id_a
    assert await view_b.locator("[data-okno=reply]").input_value() == ""
    # the first tab shows that it holds a draft; going back finds it untouched
    await anna.locator(f"[data-okno=tab][data-id='{id_a}'] [data-okno=draft-mark]").wait_for()
    await anna.locator(f"[data-okno=tab][data-id='{id_a}']").click()
    assert await view_a.locator("[data-okno=reply]").input_value() == "Черновик для первого"
    # ... and so does a reload of the page
    await anna.reload()
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    reply = anna.locator("[data-okno=dialog-view]:visible [data-okno=reply]")
    await reply.wait_for()
    assert await reply.input_value() == "Черновик для первого"
    view_a = anna.locator("[data-okno=dialog-view]:visible")

    # typing, both ways
    await first.locator("[data-okno=input]").press_sequentially("Ещё вопрос", delay=30)
    await view_a.locator("[data-okno=typing]", has_text="Клиент печатает").wait_for()
    await reply.fill("")
    await reply.press_sequentially("Секунду", delay=30)
    await first.locator("[data-okno=typing]", has_text="печатает").wait_for()

    # a file from the operator reaches the customer as an image
    await view_a.locator("[data-okno=file]").set_input_files(
        files=[{"name": "limits.png", "mimeType": "image/png", "buffer": PNG}]
    )
    await first.locator("[data-okno=message][data-author=operator] img").wait_for()
    await view_a.locator("[data-okno=message][data-author=operator] img").wait_for()

    # a break shows on the supervisor's board at once
    await anna.locator("[data-okno=presence]").select_option("break")
    row = sveta.locator("[data-okno=operator-row]", has_text="Анна")
    await row.and_(sveta.locator("[data-status=break]")).wait_for()
    assert "Перерыв" in await row.locator("[data-okno=op-status]").inner_text()
    for page in (anna, sveta, first, second):
        assert page.errors == [], page.errors


async def test_topic_and_tags_saved_one_after_the_other_are_both_kept(
    floor: srv.OknoServer, chromium: Any
) -> None:
    """The topic's save and the tags' save may reach the server in either order; neither
    may undo the other (each sends only the field that changed)."""
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(customer, "Не приходит смс с кодом для входа")
    await anna.locator("[data-okno=conv]", has_text="смс с кодом").click()
    view = anna.locator("[data-okno=dialog-view]:visible")
    conversation_id = int(await view.get_attribute("data-conversation") or 0)

    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_save(route: Any) -> None:
        if route.request.method == "PATCH" and not held.is_set():
            held.set()
            await release.wait()  # it reaches the server after the second one
        await route.continue_()

    await anna.route(f"**/api/v1/conversations/{conversation_id}", hold_the_first_save)
    await view.locator("[data-okno=topic]").fill("Вход в приложение")
    await view.locator("[data-okno=topic]").press("Enter")  # saved: the topic
    await asyncio.wait_for(held.wait(), 10)
    async with anna.expect_event("requestfinished", lambda r: r.method == "PATCH"):
        await view.locator("[data-okno=tags]").fill("смс, приложение")
        await view.locator("[data-okno=tags]").press("Enter")  # saved: the tags
    async with anna.expect_event("requestfinished", lambda r: r.method == "PATCH"):
        release.set()
    saved = conversation(floor, conversation_id)
    assert (saved["topic"], saved["tags"]) == ("Вход в приложение", ["смс", "приложение"])
    assert anna.errors == [], anna.errors


async def test_admin_forms_say_what_is_wrong_next_to_the_field_in_either_language(
    floor: srv.OknoServer, chromium: Any
) -> None:
    root = await b.staff_page(chromium, floor.url, "root", PASSWORD, path="/admin")
    form = root.locator("[data-okno=new-user]")
    await form.wait_for()
    await form.locator("[name=login]").fill("petr")
    await form.locator("[name=name]").fill("Пётр")
    await form.locator("[name=password]").fill("short")
    await form.locator("[data-okno=submit]").click()
    error = form.locator("[data-error-for=password]")
    await error.filter(has_text="10").wait_for()  # "нужно не меньше 10 символов"
    assert await form.locator("[data-error-for=login]").inner_text() == ""

    await form.locator("[name=login]").fill("anna")  # taken
    await form.locator("[name=password]").fill("long-enough-password")
    await form.locator("[data-okno=submit]").click()
    await form.locator("[data-error-for=login]", has_text="логин").wait_for()
    assert await error.inner_text() == ""

    await form.locator("[name=login]").fill("petr")
    await form.locator("[name=team_id]").select_option(label="Кредиты")
    await form.locator("[data-okno=submit]").click()
    await root.locator("[data-okno=user-row][data-login=petr]", has_text="Кредиты").wait_for()
    signed_in = httpx.post(
        f"{floor.url}/api/v1/auth/token",
        json={"login": "petr", "password": "long-enough-password"},
    )
    assert signed_in.status_code == 200
    await root.screenshot(path=b.shot("admin-users.png"), full_page=True)

    # the widget settings: a bad colour is refused next to the colour field
    await root.locator("[data-section=widgets]").click()
    widget = root.locator("[data-okno=widget-form]")
    await widget.locator("[name=key]").fill("no spaces allowed")
    await widget.locator("[data-okno=submit]").click()
    await widget.locator("[data-error-for=key]").filter(has_text="символ").wait_for()
    await root.screenshot(path=b.shot("admin-widget.png"), full_page=True)

    # a shared template written here is offered to every operator
    await root.locator("[data-section=templates]").click()
    tpl = root.locator("[data-okno=new-template]")
    await tpl.locator("[name=shortcut]").fill("hours")
    await tpl.locator("[name=scope]").select_option("shared")
    await tpl.locator("[name=title]").fill("Часы работы")
    await tpl.locator("[name=body]").fill("Мы на связи круглосуточно, {{customer.name}}.")
    await tpl.locator("[data-okno=submit]").click()
    await root.locator("[data-okno=template-row][data-shortcut=hours]").wait_for()
    found = httpx.get(
        f"{floor.url}/api/v1/saved-replies?q=hou", headers=token(floor, "anna")
    ).json()["saved_replies"]
    assert [r["title"] for r in found] == ["Часы работы"]
    # an unknown placeholder is refused next to the text
    await tpl.locator("[name=shortcut]").fill("bad")
    await tpl.locator("[name=title]").fill("Плохой")
    await tpl.locator("[name=body]").fill("Здравствуйте, {{customer.passport}}")
    await tpl.locator("[data-okno=submit]").click()
    await (
        tpl.locator("[data-okno=form-error], [data-error-for=body]")
        .filter(has_text="passport")
        .first.wait_for()
    )

    # English
    await root.locator("[data-okno=lang]").click()
    await root.locator("[data-okno=logout]", has_text="Sign out").wait_for()
    await root.locator("[data-okno=section][data-shown=users]").wait_for()
    form = root.locator("[data-okno=new-user]")
    await form.locator("[name=login]").fill("anna")
    await form.locator("[name=name]").fill("Anna")
    await form.locator("[name=password]").fill("long-enough-password")
    await form.locator("[data-okno=submit]").click()
    await form.locator("[data-error-for=login]", has_text="This login is taken").wait_for()
    assert root.errors == []


async def test_the_supervisor_changes_the_info_message_and_open_widgets_show_it(
    floor: srv.OknoServer, chromium: Any
) -> None:
    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    sveta = await b.staff_page(chromium, floor.url, "sveta", PASSWORD, path="/supervisor")
    form = sveta.locator("[data-okno=widget-texts-form]")
    await form.locator("[name=info_message]").fill("Высокая нагрузка: ответим в течение 10 минут")
    await form.locator("button[type=submit]").click()
    await sveta.locator(".toast", has_text="Сохранено").wait_for()
    await customer.locator("[data-okno=info]", has_text="Высокая нагрузка").wait_for()


async def test_an_idle_session_ends_and_asks_to_sign_in_again(
    floor: srv.OknoServer, chromium: Any
) -> None:
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.clock.install()
    await anna.reload()
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    await anna.clock.fast_forward("10:00")  # reading for ten minutes is not idleness...
    await anna.mouse.move(200, 200)
    await anna.mouse.move(300, 300)
    await anna.clock.fast_forward("25:00")
    assert "/login" not in anna.url
    await anna.clock.fast_forward("31:00")  # ...half an hour without a touch is
    await anna.wait_for_url("**/login?**reason=expired**")
    await anna.locator("[data-okno=login-error]", has_text="Сессия истекла").wait_for()
    # the cookie is gone: the workspace asks for a password again
    await anna.goto(f"{floor.url}/")
    assert "/login" in anna.url


async def test_signing_out_forgets_drafts_on_this_computer(
    floor: srv.OknoServer, chromium: Any
) -> None:
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    customer = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(customer, "Мой номер счёта 40817810099910004312")
    await anna.locator("[data-okno=conv]").first.click()
    reply = anna.locator("[data-okno=dialog-view]:visible [data-okno=reply]")
    await reply.fill("Проверяю счёт 40817810099910004312")
    await reply.press("End")
    assert await anna.evaluate("Object.keys(localStorage).some(k => k.startsWith('okno:draft:'))")
    await anna.locator("[data-okno=logout]").click()
    await anna.wait_for_url("**/login?**")
    assert not await anna.evaluate(
        "Object.keys(localStorage).some(k => k.startsWith('okno:draft:'))"
    )


async def test_a_session_ended_everywhere_takes_the_workspace_to_the_sign_in_page(
    floor: srv.OknoServer, chromium: Any
) -> None:
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=conn][data-state=online]").wait_for()
    # an admin ends every session of hers (a stolen laptop, say)
    root = token(floor, "root")
    me = httpx.get(f"{floor.url}/api/v1/me", headers=token(floor, "anna")).json()
    ended = httpx.post(f"{floor.url}/api/v1/users/{me['id']}/sign-out-everywhere", headers=root)
    assert ended.status_code == 200, ended.text
    # the live connection is closed with token_revoked: the page does not keep
    # reconnecting with a dead session, it asks for the password again and says why
    await anna.wait_for_url("**/login?**reason=token_revoked**", timeout=15_000)
    await anna.locator("[data-okno=login-error]", has_text="Сеанс завершён").wait_for()
