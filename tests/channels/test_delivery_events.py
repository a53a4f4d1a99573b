"""What the platform said of an operator's message reaches the staff who may see the
dialog, live and on catch-up: ``message.delivery`` {message_id, status}, sent or failed
(a customer who blocked the bot), never another team's operator and never a customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, staff_token
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update
from tests.channels.telegram_live import add_channel, conversations, eventually, staff_messages
from tests.conftest import make_settings

SECRET = "wh-secret_0123456789"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeTelegram) -> Iterator[TestClient]:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )
    channel_id = add_channel(
        fast, "telegram", bot_token=TOKEN, webhook_secret=SECRET, api_base=fake.url
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


def delivery_events(client: TestClient, login: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events?after_seq=0", headers=bearer(staff_token(client, login)))
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["type"] == "message.delivery"]


def answer(client: TestClient, chat_id: int, text: str) -> tuple[int, int]:
    """The customer writes, anna takes the dialog and answers: (dialog id, message id)."""
    hook = client.post(
        f"/hooks/telegram/{client.channel_id}",  # type: ignore[attr-defined]
        json=message_update("Помогите с переводом", chat_id=chat_id),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert hook.status_code == 200
    dialog = eventually(lambda: conversations(client), what="the dialog")[0]
    anna = bearer(staff_token(client, "anna"))
    taken = client.post(f"/api/v1/conversations/{dialog['id']}/assign", json={}, headers=anna)
    assert taken.status_code == 200, taken.text
    sent = client.post(
        f"/api/v1/conversations/{dialog['id']}/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers=anna,
    )
    assert sent.status_code == 201, sent.text
    return dialog["id"], sent.json()["message"]["id"]


def test_a_refused_message_reaches_the_operator_and_supervisor_live_and_on_catch_up(
    live: TestClient, fake: FakeTelegram
) -> None:
    fake.blocked.add(555090)
    anna = staff_token(live, "anna")
    with live.websocket_connect(f"/api/v1/ws?token={anna}") as ws:
        assert ws.receive_json()["type"] == "stream.ready"
        dialog_id, message_id = answer(live, 555090, "Сейчас проверю")
        while True:
            event = ws.receive_json()
            if event["type"] == "message.delivery" and event["payload"]["status"] == "failed":
                break
    assert event["conversation_id"] == dialog_id
    assert event["payload"] == {"message_id": message_id, "status": "failed"}
    # the message itself says so when the dialog is opened later
    shown = eventually(lambda: staff_messages(live, dialog_id)[-1], what="the answer")
    assert shown["delivery"] == "failed"

    for login in ("anna", "sveta", "root", "igor"):  # igor: anna's team may see the dialog
        events = delivery_events(live, login)
        assert {"message_id": message_id, "status": "failed"} in [e["payload"] for e in events]
    assert delivery_events(live, "olga") == []  # another team's operator


def test_a_sent_message_reports_sent_to_staff(live: TestClient, fake: FakeTelegram) -> None:
    _, message_id = answer(live, 555091, "Готово, перевод прошёл")
    fake.wait_for("/sendMessage")
    statuses = eventually(
        lambda: [
            e["payload"]["status"]
            for e in delivery_events(live, "anna")
            if e["payload"]["message_id"] == message_id and e["payload"]["status"] == "sent"
        ],
        what="a sent report",
    )
    assert statuses == ["sent"]
