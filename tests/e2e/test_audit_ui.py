"""The Аудит page as the security officer uses it, in real Chromium against a real
``okno serve``: an operator opens a customer card; the officer finds that view by the
operator's login, opens the entry's details with its hashes, verifies the chain and runs
a retention dry run. An operator is refused the page. Screenshot: ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from okno.operators import service as operators
from okno.settings import Settings
from tests import services
from tests.builders import PASSWORD, WIDGET_KEY, in_db, password_hash
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def with_officer(data_dir: Path) -> Settings:
    """The personas, the widget, and vera, the bank's security officer."""
    settings: Settings = seeded(data_dir)

    async def create(session: Any) -> None:
        await operators.create_user(
            session,
            login="vera",
            password=PASSWORD,
            role="security_officer",
            display_name="Вера Охрана",
            password_hash=password_hash(),
        )

    in_db(settings, create)
    return settings


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    services.require_chromium()
    with b.serving(prepared_data("staff-officer", with_officer)) as server:
        yield server


def anna_opens_a_card(server: srv.OknoServer) -> int:
    session = httpx.post(
        f"{server.url}/api/v1/widget/sessions",
        json={"widget_key": WIDGET_KEY, "visitor": {"name": "Пётр"}},
    ).json()
    sent = httpx.post(
        f"{server.url}/api/v1/widget/messages",
        json={"client_msg_id": "m-1", "text": "Здравствуйте"},
        headers={"Authorization": f"Bearer {session['session_token']}"},
    )
    assert sent.status_code in (200, 201), sent.text
    anna = token(server, "anna")
    response = httpx.get(
        f"{server.url}/api/v1/conversations/{sent.json()['message']['conversation_id']}",
        headers=anna,
    )
    assert response.status_code == 200, response.text
    conv = response.json()
    customer_id: int = conv["customer"]["id"]
    card = httpx.get(f"{server.url}/api/v1/customers/{customer_id}", headers=anna)
    assert card.status_code == 200, card.text
    return customer_id


async def test_the_officer_finds_a_card_view_verifies_the_chain_and_dry_runs_retention(
    floor: srv.OknoServer, chromium: Any
) -> None:
    customer_id = anna_opens_a_card(floor)
    officer = await b.staff_page(chromium, floor.url, "vera", PASSWORD, path="/audit")
    nav = officer.locator("nav a[href='/audit']")
    assert await nav.inner_text() == "Аудит"
    table = officer.locator("[data-okno=audit-table]")
    await table.wait_for()

    form = officer.locator("[data-okno=audit-form]")
    await form.locator("input[name=actor]").fill("anna")
    await form.locator("select[name=action]").select_option("customer.viewed")
    await form.locator("button[type=submit]").click()
    rows = officer.locator("[data-okno=audit-row]")
    await officer.wait_for_function(
        "() => [...document.querySelectorAll('[data-okno=audit-row]')]"
        ".every(r => r.dataset.action === 'customer.viewed')"
    )
    assert await rows.count() == 1
    row = rows.first
    text = await row.inner_text()
    assert "anna" in text and "Просмотр карточки клиента" in text
    assert f"customer:{customer_id}" in text and "успешно" in text

    await row.click()
    details = officer.locator("[data-okno=audit-details]")
    assert "Хеш записи" in await details.inner_text()

    await officer.locator("[data-okno=audit-verify]").click()
    verdict = officer.locator("[data-okno=audit-verdict-text]")
    await verdict.wait_for()
    assert await verdict.get_attribute("data-ok") == "true"
    assert "Цепочка цела" in await verdict.inner_text()

    await officer.locator("[data-okno=retention-dry-run]").click()
    await officer.locator("[data-okno=retention-row]").first.wait_for()
    assert "пробный" in await officer.locator("[data-okno=retention-row]").first.inner_text()
    await officer.screenshot(path=b.shot("audit.png"), full_page=True)
    assert officer.errors == [] and officer.dialogs == []


async def test_an_operator_is_refused_the_audit_page(floor: srv.OknoServer, chromium: Any) -> None:
    page = await b.staff_page(chromium, floor.url, "anna", PASSWORD, path="/")
    assert await page.locator("nav a[href='/audit']").count() == 0
    response = await page.goto(f"{floor.url}/audit")
    assert response is not None and response.status == 403


async def test_the_page_speaks_english_and_escapes_what_it_shows(
    floor: srv.OknoServer, chromium: Any
) -> None:
    # a login attempt with markup in it lands in the log (a failed sign-in by B's code,
    # or here: a search whose filter text is recorded) and must show as text
    officer = await b.staff_page(chromium, floor.url, "vera", PASSWORD, path="/audit")
    await officer.locator("[data-okno=audit-table]").wait_for()
    form = officer.locator("[data-okno=audit-form]")
    await form.locator("input[name=actor]").fill("<img src=x onerror=alert(1)>")
    await form.locator("button[type=submit]").click()
    await officer.locator("[data-okno=audit-empty]").wait_for()
    await officer.goto(f"{floor.url}/lang/en?next=/audit")
    await officer.locator("[data-okno=audit-table]").wait_for()
    assert await officer.locator("nav a[href='/audit']").inner_text() == "Audit"
    first = officer.locator("[data-okno=audit-row]").first
    assert "Audit log searched" in await first.inner_text()
    await first.click()
    assert "<img src=x" in await officer.locator("[data-okno=audit-details]").inner_text()
    assert officer.dialogs == [] and officer.errors == []
