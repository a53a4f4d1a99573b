"""Reply suggestions in the workspace, in real Chromium against a real ``okno serve``.

Игорь once answered a question about SMS codes. A customer writes in the widget that she
lost her card; Анна opens the dialog and sees a suggestion from the knowledge base above
the composer; she puts it into the composer with a click, adds a sentence and sends it:
the record says ``edited``. The customer then asks about SMS codes: new chips come live,
one from the knowledge base and one from Игорь's answer ("Ответ коллег"); Анна turns the
colleague's one down with × from the keyboard. The supervisor, reading the dialog on the
live board, sees no chips. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import PASSWORD, WIDGET_KEY
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KB = """
articles:
  - id: card-block
    title: Как заблокировать карту
    questions: ["Как заблокировать карту?", "Потерял карту, что делать"]
    answer: "Заблокировать карту можно в приложении: Карты → Заблокировать."
    topic: cards
  - id: sms-code
    title: Не приходит СМС с кодом
    questions: ["Не приходит СМС с кодом", "Не могу войти, нет кода из смс"]
    answer: "Проверьте, что на телефоне есть связь, и запросите код ещё раз."
    topic: login
"""
CARD_BLOCK = "Заблокировать карту можно в приложении: Карты → Заблокировать."
COLLEAGUE = "Перезагрузите телефон и запросите код через минуту — обычно это помогает."


def with_kb(folder: Path) -> None:
    seeded(folder)
    env = srv.okno_env(folder)
    kb = folder / "kb.yaml"
    kb.write_text(KB, encoding="utf-8")
    srv.run_cli(["kb", "import", str(kb), "--json"], env)


@pytest.fixture
def bank(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The personas, the widget ``acme`` (no bot: dialogs go to people) and the KB above."""
    with b.serving(prepared_data("reply-suggestions", with_kb)) as server:
        yield server


def colleague_answered_before(server: srv.OknoServer) -> None:
    """An earlier dialog: a customer could not get the SMS code, Игорь answered."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        session = http.post("/api/v1/widget/sessions", json={"widget_key": WIDGET_KEY}).json()
        said = http.post(
            "/api/v1/widget/messages",
            json={"client_msg_id": "earlier-1", "text": "Не приходит смс с кодом для входа"},
            headers={"Authorization": f"Bearer {session['session_token']}"},
        )
        assert said.status_code == 201, said.text
        answered = http.post(
            f"/api/v1/conversations/{said.json()['message']['conversation_id']}/messages",
            json={"client_msg_id": "earlier-2", "text": COLLEAGUE},
            headers=token(server, "igor"),
        )
        assert answered.status_code == 201, answered.text


def stored(server: srv.OknoServer, conversation_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/v1/conversations/{conversation_id}/reply-suggestions",
        headers=token(server, "root"),
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_the_operator_edits_a_suggested_reply_and_the_record_says_so(
    bank: srv.OknoServer, chromium: Any
) -> None:
    colleague_answered_before(bank)
    anna = await b.staff_page(chromium, bank.url, "anna", PASSWORD)
    sveta = await b.staff_page(chromium, bank.url, "sveta", PASSWORD, path="/supervisor")
    for page in (anna, sveta):
        await page.locator("[data-okno=conn][data-state=online]").wait_for()

    customer = await b.customer_page(chromium, bank.url, WIDGET_KEY)
    await b.customer_types(customer, "Потерял карту, что делать?")
    item = anna.locator("[data-okno=conv]").filter(has_text="Потерял карту")
    await item.click()
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    conversation_id = int(await dialog.get_attribute("data-conversation") or 0)

    # One chip, from the knowledge base, above the composer.
    chips = dialog.locator("[data-okno=suggestion]")
    await chips.first.wait_for()
    assert await chips.count() == 1
    chip = chips.first
    assert await chip.get_attribute("data-source") == "kb"
    assert await chip.locator("[data-okno=suggestion-source]").inner_text() == "Из базы знаний"

    # A click puts it into the composer, editable; Анна adds a sentence and sends.
    await chip.locator("[data-okno=suggestion-use]").click()
    reply = dialog.locator("[data-okno=reply]")
    assert await reply.input_value() == CARD_BLOCK
    assert await chip.get_attribute("data-picked") == "true"
    await anna.screenshot(path=b.shot("reply-suggestions.png"))
    await reply.press("End")
    await reply.type(" Новую карту выпустим бесплатно.")
    await reply.press("Enter")
    sent = f"{CARD_BLOCK} Новую карту выпустим бесплатно."
    await b.widget_messages(customer, "operator").filter(has_text=sent).wait_for()
    await dialog.locator("[data-okno=suggestions]").wait_for(state="hidden")
    record = stored(bank, conversation_id)["suggestions"][0]
    assert (record["ref"], record["outcome"]) == ("card-block", "edited")
    assert record["sent_message_id"] is not None

    # The customer asks the next thing: new chips come without a click, one of them the
    # answer Игорь gave another customer.
    await b.customer_types(customer, "А ещё смс с кодом для входа не приходит")
    await dialog.locator("[data-okno=suggestion][data-source=history]").wait_for()
    sources = await dialog.locator("[data-okno=suggestion-source]").all_inner_texts()
    assert sorted(sources) == ["Из базы знаний", "Ответ коллег"], sources
    history = dialog.locator("[data-okno=suggestion][data-source=history]")
    assert COLLEAGUE in await history.inner_text()

    # Keyboard: from the composer, Shift+Tab walks back over the chips; Enter on the ×
    # of the colleague's answer turns it down.
    await reply.focus()
    for _ in range(6):
        await anna.keyboard.press("Shift+Tab")
        focused = await anna.evaluate(
            "() => [document.activeElement.dataset.okno,"
            " document.activeElement.closest('[data-okno=suggestion]')?.dataset.source]"
        )
        if focused == ["suggestion-reject", "history"]:
            break
    assert focused == ["suggestion-reject", "history"], focused
    await anna.keyboard.press("Enter")
    await history.wait_for(state="detached")
    assert await dialog.locator("[data-okno=suggestion]").count() == 1
    shown = stored(bank, conversation_id)
    outcomes = {s["source"]: s["outcome"] for s in shown["suggestions"]}
    assert outcomes == {"kb": None, "history": "rejected"}

    # The supervisor reads the dialog on the live board: no chips there.
    await sveta.locator(f"[data-okno=open-dialog][data-id='{conversation_id}']").click()
    viewer = sveta.locator("[data-okno=viewer]")
    await viewer.locator("[data-okno=message][data-author=customer]").first.wait_for()
    await sveta.wait_for_timeout(500)
    assert await viewer.locator("[data-okno=suggestion]").count() == 0
    assert anna.errors == [] and sveta.errors == []
