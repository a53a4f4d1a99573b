"""The widget in real Chromium against a real ``okno serve`` process.

A customer on the demo bank page writes; the operator's event stream gets it; the
operator's reply shows in the widget; then the server is killed with SIGKILL, restarted,
and after a page reload both messages are still there, exactly once, on both sides.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import ARTIFACTS, customer_types, widget_messages
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def operator_token(server: srv.OknoServer) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"login": "anna", "password": srv.PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def open_widget(page: Any, server: srv.OknoServer) -> None:
    await page.goto(f"{server.url}/demo?key={srv.WIDGET_KEY}")
    await page.locator("[data-okno=bubble]").click()
    await page.locator("[data-okno=window]").wait_for(state="visible")


async def test_chat_round_trip_survives_kill_9_and_restart(page: Any, okno: srv.OknoServer) -> None:
    token = operator_token(okno)
    async with srv.EventStream(f"{okno.ws_url}/api/v1/ws?token={token}", label="operator") as ops:
        await open_widget(page, okno)
        await customer_types(page, "Здравствуйте! Не приходит СМС с кодом")
        arrived = await ops.wait_for(
            lambda e: (
                e["type"] == "message.created"
                and e["payload"]["message"]["text"] == "Здравствуйте! Не приходит СМС с кодом"
            ),
            within=15,
        )
    conversation = arrived["conversation_id"]
    reply = httpx.post(
        f"{okno.url}/api/v1/conversations/{conversation}/messages",
        json={"client_msg_id": uuid.uuid4().hex, "text": "Проверим номер телефона в профиле"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    operator_line = widget_messages(page, "operator").filter(
        has_text="Проверим номер телефона в профиле"
    )
    await operator_line.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "widget-conversation.png"))

    okno.kill9()
    okno.start()

    await open_widget(page, okno)  # a fresh page load: history comes from the server
    await operator_line.wait_for()
    texts = await widget_messages(page).all_inner_texts()
    assert sum("Не приходит СМС с кодом" in t for t in texts) == 1
    assert sum("Проверим номер телефона в профиле" in t for t in texts) == 1
    stored = httpx.get(
        f"{okno.url}/api/v1/conversations/{conversation}/messages",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["messages"]
    assert [m["text"] for m in stored] == [
        "Здравствуйте! Не приходит СМС с кодом",
        "Проверим номер телефона в профиле",
    ]


async def test_markup_in_messages_is_shown_as_text(page: Any, okno: srv.OknoServer) -> None:
    await open_widget(page, okno)
    evil = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
    await customer_types(page, evil)
    line = widget_messages(page, "customer").last
    await line.wait_for()
    assert evil in await line.inner_text()
    token = operator_token(okno)
    conversation = httpx.get(
        f"{okno.url}/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}
    ).json()["conversations"][0]["id"]
    httpx.post(
        f"{okno.url}/api/v1/conversations/{conversation}/messages",
        json={"client_msg_id": uuid.uuid4().hex, "text": "<b onmouseover=alert(3)>жирный</b>"},
        headers={"Authorization": f"Bearer {token}"},
    )
    await widget_messages(page, "operator").filter(has_text="<b onmouseover").wait_for()
    assert page.dialogs == []
    assert await page.locator("img[src=x]").count() == 0


async def test_images_and_pdfs_go_both_ways_and_the_customer_rates(
    page: Any, okno: srv.OknoServer, tmp_path: Path
) -> None:
    await open_widget(page, okno)
    await customer_types(page, "Прикладываю скриншот ошибки")
    photo = tmp_path / "ошибка.png"
    photo.write_bytes(PNG)
    await page.locator("[data-okno=file]").set_input_files(str(photo))
    await page.locator("[data-okno=attachment]").first.wait_for()
    token = operator_token(okno)
    auth = {"Authorization": f"Bearer {token}"}
    conversation = httpx.get(f"{okno.url}/api/v1/conversations", headers=auth).json()[
        "conversations"
    ][0]["id"]
    stored = httpx.get(
        f"{okno.url}/api/v1/conversations/{conversation}/messages", headers=auth
    ).json()["messages"]
    (received,) = [m for m in stored if m["attachments"]]
    assert received["attachments"][0]["content_type"] == "image/png"
    image = httpx.get(f"{okno.url}{received['attachments'][0]['url']}", headers=auth)
    assert image.content == PNG

    sent = httpx.post(
        f"{okno.url}/api/v1/conversations/{conversation}/attachments",
        data={"client_msg_id": uuid.uuid4().hex, "text": "Памятка"},
        files={"file": ("памятка.pdf", PDF, "application/pdf")},
        headers=auth,
    )
    assert sent.status_code == 201, sent.text
    await page.locator("[data-okno=attachment]").filter(has_text="памятка.pdf").wait_for()

    closed = httpx.post(
        f"{okno.url}/api/v1/conversations/{conversation}/close",
        json={"resolution": "resolved"},
        headers=auth,
    )
    assert closed.status_code == 200
    await page.locator("[data-okno=rating]").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "widget-rating.png"))
    await page.locator("[data-okno=star][data-score='5']").click()
    await page.locator("[data-okno=rated]").wait_for()
    rated = httpx.get(f"{okno.url}/api/v1/conversations/{conversation}", headers=auth).json()
    assert rated["rating"] == 5


async def test_info_message_appears_in_an_open_widget_without_reload(
    page: Any, okno: srv.OknoServer
) -> None:
    await open_widget(page, okno)
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    info = page.locator("[data-okno=info]")
    assert not await info.is_visible()
    env = srv.okno_env(okno.data_dir)
    srv.run_cli(
        ["users", "create", "--login", "boss", "--password", srv.PASSWORD, "--role", "admin"], env
    )
    async with httpx.AsyncClient(base_url=okno.url) as http:
        token = (
            await http.post("/api/v1/auth/token", json={"login": "boss", "password": srv.PASSWORD})
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        widget = next(
            c
            for c in (await http.get("/api/v1/channels", headers=auth)).json()["channels"]
            if c["key"] == srv.WIDGET_KEY
        )
        response = await http.patch(
            f"/api/v1/channels/{widget['id']}",
            json={"info_message": "Высокая нагрузка: ответим в течение 10 минут"},
            headers=auth,
        )
        assert response.status_code == 200
    await info.filter(has_text="Высокая нагрузка").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "widget-info-message.png"))
