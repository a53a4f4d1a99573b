"""Routing as people see it, in real Chromium against a real ``okno serve`` process.

An admin sets up a queue with business hours in the admin pages (a wrong span is refused
next to the hours) and gives an operator skills; customers writing while nobody is online
see their place in line in the widget; when Анна opens her workspace the dialogs become hers
without a click, and the line disappears; a supervisor reads why a dialog went to her; a
customer writing to a closed queue is told when the answer will come. Screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from tests.builders import PASSWORD, WIDGET_KEY
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# ms: a first look at the line comes ~1 s after the message, then every 15 s; whatever waits
# for routing (a dispatch pass in the server's worker) gets as long on a loaded machine
WAIT = 30_000


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """anna and igor (team Поддержка), olga (Кредиты), sveta (supervisor of all), root
    (admin), and the widget ``acme``; nobody online."""
    with b.serving(prepared_data("staff", seeded)) as server:
        yield server


def api_get(server: srv.OknoServer, path: str, login: str = "root") -> Any:
    response = httpx.get(f"{server.url}{path}", headers=token(server, login))
    assert response.status_code == 200, response.text
    return response.json()


async def test_admin_sets_up_a_queue_with_hours_and_gives_skills(
    floor: srv.OknoServer, chromium: Any
) -> None:
    root = await b.staff_page(chromium, floor.url, "root", PASSWORD, path="/admin")
    await root.locator("[data-section=queues]").click()
    await root.locator("[data-okno=no-queues]").wait_for()
    form = root.locator("[data-okno=new-queue]")
    await form.locator("[name=name]").fill("Карты")
    await form.locator("[name=topic]").fill("cards")
    await form.locator("[name=team_id]").select_option(label="Поддержка")
    await form.locator("[name=priority]").fill("10")
    await form.locator("[name=skill]").fill("cards")
    await form.locator("[name=min_skill_level]").select_option("2")
    await form.locator("[name=strategy]").select_option("longest_idle")
    await form.locator("[name=overflow_team_id]").select_option(label="Кредиты")
    await form.locator("[name=overflow_after_seconds]").fill("120")
    for day in ("tue", "wed", "thu", "fri"):
        await form.locator(f"[name=hours_{day}]").fill("09:00-18:00")
    await form.locator("[name=hours_mon]").fill("25:00-26:00")
    await form.locator("[name=hours_sat]").fill("10:00-14:00, 15:00-16:00")
    await form.locator("[name=hours_holidays]").fill("2026-01-01, 2026-01-02")
    await form.locator("[name=out_of_hours_message]").fill("Сейчас мы не работаем.")
    await form.locator("[data-okno=submit]").click()

    # The impossible hours are refused next to the hours, and nothing is created.
    error = form.locator("[data-error-for=hours]")
    await error.filter(has_text="09:00-18:00").wait_for()
    assert "Часы работы" in await error.inner_text()
    assert "invalid" in (await form.locator("[data-okno=group-hours]").get_attribute("class") or "")
    # the input to fix is outlined, the good ones are not
    suspects = form.locator(".field.suspect input")
    assert await suspects.evaluate_all("els => els.map(e => e.name)") == ["hours_mon"]
    assert await form.locator("[data-error-for=name]").inner_text() == ""
    assert api_get(floor, "/api/v1/routing/queues")["queues"] == []
    await form.locator("[data-okno=group-hours]").scroll_into_view_if_needed()
    await root.screenshot(path=b.shot("admin-queue-bad-hours.png"))

    await form.locator("[name=hours_mon]").fill("09:00-18:00")
    await form.locator("[data-okno=submit]").click()
    row = root.locator("[data-okno=queue-row][data-name=Карты]")
    await row.wait_for()
    text = await row.inner_text()
    for shown in ("cards", "Поддержка", "cards ≥ 2", "10", "Дольше всех", "Кредиты через 2 мин"):
        assert shown in text, (shown, text)
    assert await row.locator("[data-okno=queue-open]").get_attribute("data-open") in (
        "true",
        "false",
    )
    (queue,) = api_get(floor, "/api/v1/routing/queues")["queues"]
    teams = {t["name"]: t["id"] for t in api_get(floor, "/api/v1/teams")["teams"]}
    assert queue["hours"] == {
        "timezone": "Europe/Moscow",
        "weekly": {
            **{d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "sat": ["10:00-14:00", "15:00-16:00"],
        },
        "holidays": ["2026-01-01", "2026-01-02"],
    }
    assert (queue["team_id"], queue["overflow_team_id"]) == (teams["Поддержка"], teams["Кредиты"])
    assert (queue["skill"], queue["min_skill_level"], queue["priority"]) == ("cards", 2, 10)
    assert (queue["strategy"], queue["overflow_after_seconds"]) == ("longest_idle", 120)
    assert queue["out_of_hours_message"] == "Сейчас мы не работаем."

    # A second queue: the fraud topic goes first, around the clock.
    form = root.locator("[data-okno=new-queue]")
    await form.locator("[name=name]").fill("Мошенничество")
    await form.locator("[name=topic]").fill("fraud")
    await form.locator("[name=priority]").fill("100")
    await form.locator("[data-okno=submit]").click()
    fraud = root.locator("[data-okno=queue-row][data-name=Мошенничество]")
    await fraud.locator(
        "[data-okno=queue-open][data-open=true]", has_text="круглосуточно"
    ).wait_for()
    await root.locator("[data-okno=queue-row][data-name=Карты]").wait_for()
    await root.evaluate(
        "document.querySelector('.page').scrollTop = 0;"
        "document.querySelectorAll('.toast').forEach((el) => el.remove())"
    )
    await root.screenshot(path=b.shot("admin-queues.png"))

    # Editing shows the hours as they were typed; emptying every day means around the clock.
    await root.locator("[data-okno=queue-row][data-name=Карты] [data-okno=edit-queue]").click()
    edit = root.locator("[data-okno=edit-queue]")
    assert await edit.locator("[name=hours_sat]").input_value() == "10:00-14:00, 15:00-16:00"
    assert await edit.locator("[name=hours_holidays]").input_value() == "2026-01-01, 2026-01-02"
    await edit.locator("[name=topic]").fill("fraud")  # taken by the other queue
    await edit.locator("[data-okno=submit]").click()
    await edit.locator("[data-error-for=topic]", has_text="другой очереди").wait_for()
    await edit.locator("[name=topic]").fill("cards")
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        await edit.locator(f"[name=hours_{day}]").fill("")
    await edit.locator("[name=hours_holidays]").fill("")
    await edit.locator("[data-okno=submit]").click()
    await root.locator(
        "[data-okno=queue-row][data-name=Карты] [data-okno=queue-open]", has_text="круглосуточно"
    ).wait_for()
    queues = {q["name"]: q for q in api_get(floor, "/api/v1/routing/queues")["queues"]}
    assert queues["Карты"]["hours"] is None and queues["Карты"]["topic"] == "cards"

    # Skills for Анна in the staff form: a bad one is refused next to the field.
    await root.locator("[data-section=users]").click()
    await root.locator("[data-okno=user-row][data-login=anna] [data-okno=edit-user]").click()
    user_form = root.locator("[data-okno=edit-user]")
    await user_form.locator("[name=skills]").fill("cards:3, credits:9")
    await user_form.locator("[data-okno=submit]").click()
    await user_form.locator("[data-error-for=skills]", has_text="от 1 до 5").wait_for()
    await user_form.locator("[name=skills]").fill("cards:3, credits, карты!")
    await user_form.locator("[data-okno=submit]").click()
    await user_form.locator("[data-error-for=skills]", has_text="от 1 до 5").wait_for()
    await user_form.locator("[name=skills]").fill("cards:3, credits")
    await user_form.locator("[data-okno=submit]").click()
    await root.locator(
        "[data-okno=user-row][data-login=anna] [data-okno=user-skills]",
        has_text="cards:3, credits:1",
    ).wait_for()
    anna = next(u for u in api_get(floor, "/api/v1/users")["users"] if u["login"] == "anna")
    assert anna["skills"] == {"cards": 3, "credits": 1}

    # The widget's dialogs get the topic "cards" and so join the queue Карты.
    await root.locator("[data-section=widgets]").click()
    widget = root.locator("[data-okno=widget-form]")
    await widget.locator("[name=topic]").fill("cards")
    await widget.locator("[data-okno=submit]").click()
    await root.locator(".toast", has_text="Сохранено").last.wait_for()
    (channel,) = api_get(floor, "/api/v1/channels")["channels"]
    assert channel["config"]["topic"] == "cards"

    # The same page in English.
    await root.locator("[data-okno=lang]").click()
    await root.locator("[data-okno=logout]", has_text="Sign out").wait_for()
    await root.locator("[data-section=queues]").click()
    await root.locator("[data-okno=queue-row][data-name=Карты]", has_text="Longest idle").wait_for()
    assert root.errors == [] and root.dialogs == []


async def test_customers_see_their_place_in_line_until_an_operator_comes_online(
    floor: srv.OknoServer, chromium: Any
) -> None:
    # Nobody is online: the first customer is first in line, the second one second.
    first = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(first, "Здравствуйте! Карту заблокировали в банкомате")
    line = first.locator("[data-okno=queue]")
    await line.filter(has_text="Вы в очереди: 1-й").wait_for(timeout=WAIT)
    second = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(second, "Добрый день, не проходит перевод")
    second_line = second.locator("[data-okno=queue]")
    await second_line.filter(has_text="Вы в очереди: 2-й").wait_for(timeout=WAIT)
    assert await second_line.get_attribute("data-position") == "2"
    await second.locator("[data-okno=window]").screenshot(path=b.shot("widget-queue.png"))
    waiting = api_get(floor, "/api/v1/conversations?status=waiting")["conversations"]
    assert len(waiting) == 2 and all(c["assignee"] is None for c in waiting)

    # Анна opens her workspace: that brings her online, and routing gives her both dialogs
    # without a click; the customers' lines disappear and they learn who answers.
    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD)
    await anna.locator("[data-okno=count-mine]", has_text="2").wait_for(timeout=WAIT)
    for customer in (first, second):
        await customer.locator("[data-okno=notice]", has_text="Анна").wait_for(timeout=WAIT)
        await customer.locator("[data-okno=queue]").wait_for(state="hidden", timeout=WAIT)
    assigned = api_get(floor, "/api/v1/conversations?status=assigned")["conversations"]
    assert sorted(c["assignee"]["name"] for c in assigned) == ["Анна", "Анна"]
    await second.locator("[data-okno=window]").screenshot(path=b.shot("widget-assigned.png"))

    # A supervisor reads why the first dialog went to Анна.
    conversation_id = min(c["id"] for c in assigned)
    sveta = await b.staff_page(chromium, floor.url, "sveta", PASSWORD, path=f"/c/{conversation_id}")
    dialog = sveta.locator("[data-okno=dialog-view]:visible")
    await dialog.locator("[data-okno=why-assigned]", has_text="Почему назначен").click()
    why = sveta.locator("[data-okno=why-modal]")
    entry = why.locator("[data-okno=why-assignment][data-kind=auto]")
    await entry.wait_for(timeout=WAIT)
    text = await entry.inner_text()
    for shown in ("Назначен автоматически", "Анна", "без очереди", "Наименее загруженному"):
        assert shown in text, (shown, text)
    chosen = entry.locator("[data-okno=why-candidate][data-chosen=true]")
    assert "Анна" in await chosen.inner_text() and "0 / 5" in await chosen.inner_text()
    await why.screenshot(path=b.shot("why-assigned.png"))
    await why.locator("[data-okno=why-close]").click()
    await why.wait_for(state="detached")
    # An operator has no such button.
    anna_dialog = anna.locator("[data-okno=conv]").first
    await anna_dialog.click()
    await anna.locator("[data-okno=dialog-view]:visible").wait_for()
    assert await anna.locator("[data-okno=why-assigned]").count() == 0

    # Out of hours: a default queue closed today and tomorrow. A third customer is told when
    # the answer will come, and waits even though Анна has room.
    today = datetime.now(UTC).date()
    created = httpx.post(
        f"{floor.url}/api/v1/routing/queues",
        json={
            "name": "Общая",
            "is_default": True,
            "hours": {
                "timezone": "UTC",
                "weekly": {
                    d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                },
                "holidays": [today.isoformat(), (today + timedelta(days=1)).isoformat()],
            },
            "out_of_hours_message": "Сейчас мы не работаем.",
        },
        headers=token(floor, "root"),
    )
    assert created.status_code == 201, created.text
    third = await b.customer_page(chromium, floor.url, WIDGET_KEY)
    await b.customer_types(third, "Хочу открыть вклад")
    opens = datetime.combine(today + timedelta(days=2), time(9, 0), tzinfo=UTC)
    local_time = await third.evaluate(
        "iso => new Date(iso).toLocaleTimeString('ru-RU', {hour: '2-digit', minute: '2-digit'})",
        opens.isoformat(),
    )
    closed_line = third.locator("[data-okno=queue][data-closed]")
    await closed_line.filter(has_text="Ответим ").wait_for(timeout=WAIT)
    assert (await closed_line.inner_text()).endswith(f" в {local_time}")
    await (
        b.widget_messages(third, "system")
        .filter(has_text="Сейчас мы не работаем.")
        .wait_for(timeout=WAIT)
    )
    await third.locator("[data-okno=window]").screenshot(path=b.shot("widget-out-of-hours.png"))
    waiting = api_get(floor, "/api/v1/conversations?status=waiting")["conversations"]
    assert [c["assignee"] for c in waiting] == [None]

    for page in (first, second, third, anna, sveta):
        assert page.errors == [], page.errors
        assert page.dialogs == [], page.dialogs
