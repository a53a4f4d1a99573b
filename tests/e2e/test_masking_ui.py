"""Masked personal data in the workspace, in real Chromium against ``okno serve``: the
operator sees a card number masked in the dialog, the inbox and the desktop notification;
"Проверить клиента" asks the customer for their secret word, which the bank's back-end (a
fake on loopback) checks; after that "Показать" reveals the number, and the secret word
itself never appears on the screen."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.builders import PASSWORD, WIDGET_KEY, cmid
from tests.customers.test_verification import SECRET_WORD, FakeBank
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CARD = "4276 3800 1234 5679"
OTHER_CARD = "5486 7300 0012 3459"


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    fake = FakeBank().start()
    yield fake
    fake.stop()


@pytest.fixture
def floor(prepared_data: b.Prepare, bank: FakeBank) -> Iterator[srv.OknoServer]:
    data = prepared_data("staff", seeded)
    with b.serving(data, extra_env={"OKNO_VERIFICATION_URL": bank.url + "/verify"}) as server:
        yield server


def staff(server: srv.OknoServer, login: str) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token", json={"login": login, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def customer_writes(server: srv.OknoServer, text: str, token: str | None = None) -> tuple[str, int]:
    """A widget customer's message (a new customer without ``token``)."""
    if token is None:
        session = httpx.post(
            f"{server.url}/api/v1/widget/sessions", json={"widget_key": WIDGET_KEY}
        )
        assert session.status_code == 200, session.text
        token = session.json()["session_token"]
    sent = httpx.post(
        f"{server.url}/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sent.status_code in (200, 201), sent.text
    return token, int(sent.json()["message"]["conversation_id"])


async def test_operator_verifies_the_customer_and_reveals_a_masked_card_number(
    floor: srv.OknoServer, chromium: Any
) -> None:
    token, conv = customer_writes(floor, f"Списали дважды с карты {CARD}")
    anna_api = staff(floor, "anna")
    taken = httpx.post(f"{floor.url}/api/v1/conversations/{conv}/assign", json={}, headers=anna_api)
    assert taken.status_code == 200, taken.text

    anna = await b.staff_page(chromium, floor.url, "anna", PASSWORD, path=f"/c/{conv}")
    dialog = anna.locator("[data-okno=dialog-view]:visible")
    message = dialog.locator("[data-okno=message][data-author=customer]").first
    await message.locator("[data-okno=msg-text]", has_text="•••• 5679").wait_for()
    assert CARD not in await dialog.inner_text()
    assert await message.get_attribute("data-masked") == "true"
    assert await message.locator("[data-okno=unmask]").count() == 0  # not verified yet
    item = anna.locator("[data-okno=conv]").filter(has_text="•••• 5679")
    await item.wait_for()
    assert CARD not in await anna.locator(".inbox").inner_text()

    # "Проверить клиента": the secret word, for the bank's customer C-1001
    box = dialog.locator("[data-okno=verification]")
    await box.locator("[data-okno=verification-state][data-status=none]").wait_for()
    await box.locator("[data-okno=verify-open]").click()
    await box.locator("[data-okno=verify-bank-id]").fill("C-1001")
    await box.locator("[data-okno=verify-start]").click()
    await box.locator("[data-okno=verification-state][data-status=awaiting_answer]").wait_for()
    await dialog.locator(
        "[data-okno=message][data-author=system]", has_text="кодовое слово"
    ).wait_for()

    customer_writes(floor, SECRET_WORD, token)
    await box.locator("[data-okno=verification-state][data-status=verified]").wait_for()
    assert "Клиент проверен до" in await box.inner_text()
    await dialog.locator(
        "[data-okno=message][data-author=customer]", has_text="ответ для проверки скрыт"
    ).wait_for()

    # "Показать": the number as the customer wrote it (and the audit log has it)
    await message.locator("[data-okno=unmask]").click()
    await message.locator("[data-okno=msg-text]", has_text=CARD).wait_for()
    assert await message.get_attribute("data-masked") == "false"
    assert SECRET_WORD not in await dialog.inner_text()  # the answer is never shown
    await anna.screenshot(path=b.shot("masking-unmasked.png"))

    # another customer's new message pops up as a desktop notification: masked too
    other_token, other = customer_writes(floor, "Добрый день")
    httpx.post(f"{floor.url}/api/v1/conversations/{other}/assign", json={}, headers=anna_api)
    await anna.locator("[data-okno=conv]", has_text="Добрый день").wait_for()
    await asyncio.sleep(3.2)  # the workspace announces a new dialog's first seconds once
    customer_writes(floor, f"Карта {OTHER_CARD} не работает", other_token)
    await anna.locator("[data-okno=conv]", has_text="•••• 3459").wait_for()
    bodies = ""
    for _ in range(50):
        bodies = " ".join(n["body"] for n in await b.notifications(anna))
        if "•••• 3459" in bodies:
            break
        await asyncio.sleep(0.1)
    assert "•••• 3459" in bodies and OTHER_CARD not in bodies
    assert anna.errors == []
