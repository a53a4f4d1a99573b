"""Telegram contract tests: documented Update bodies in, the exact Bot API requests out,
against a fake Bot API on loopback; forged, replayed and malformed webhooks; faults (429,
5xx, timeouts, a blocked bot); long polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.channels import polling
from okno.channels.models import Channel
from okno.db.session import Database
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, in_db, staff_token
from tests.channels.fakes.server import Reply
from tests.channels.fakes.telegram import (
    TOKEN,
    FakeTelegram,
    callback_update,
    message_update,
    user,
)
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.conftest import make_settings

SECRET = "wh-secret_0123456789"
# Telegram re-encodes every photo as JPEG; the start of a JFIF file is enough for a sniffer.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeTelegram) -> Iterator[TestClient]:
    """okno with its worker, one Telegram channel pointed at the fake."""
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


def hook(client: TestClient, update: Any, secret: str | None = SECRET, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    body = raw if raw is not None else json.dumps(update).encode()
    return client.post(f"/hooks/telegram/{client.channel_id}", content=body, headers=headers)  # type: ignore[attr-defined]


def take_and_reply(client: TestClient, conversation_id: int, text: str) -> None:
    anna = staff_token(client, "anna")
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/assign", json={}, headers=bearer(anna)
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


def test_a_text_message_lands_in_the_workspace_with_the_customers_name(live: TestClient) -> None:
    response = hook(live, message_update("Здравствуйте, не приходит смс с кодом"))
    assert response.status_code == 200 and response.json() == {"ok": True}
    dialog = the_dialog(live)
    assert dialog["customer"]["name"] == "Иван Петров"
    assert dialog["channel"]["kind"] == "telegram"
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts == ["Здравствуйте, не приходит смс с кодом"]


def test_the_operators_answer_leaves_as_one_sendMessage(
    live: TestClient, fake: FakeTelegram
) -> None:
    hook(live, message_update("Как пополнить карту?", chat_id=555002))
    take_and_reply(live, the_dialog(live)["id"], "Через приложение, раздел «Пополнить».")
    (call,) = fake.wait_for("/sendMessage")
    assert call.method == "POST"
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.headers["content-type"].startswith("application/json")
    assert call.json() == {"chat_id": "555002", "text": "Через приложение, раздел «Пополнить»."}
    messages = eventually(
        lambda: [m for m in staff_messages(live, the_dialog(live)["id"]) if m["delivery"] == "sent"]
    )
    assert messages[0]["author_kind"] == "operator"


def test_forged_missing_and_malformed_webhooks_store_nothing(live: TestClient) -> None:
    good = message_update("Мне нужна помощь")
    assert hook(live, good, secret="wrong-secret").status_code == 403
    assert hook(live, good, secret=None).status_code == 403
    assert hook(live, None, raw=b'{"update_id": 1, "message": ').status_code == 400
    assert hook(live, {"message": {"text": "нет update_id"}}).status_code == 400
    assert hook(live, [1, 2, 3]).status_code == 400
    bad_chat = message_update("x")
    bad_chat["message"]["chat"]["id"] = "not-a-number"
    assert hook(live, bad_chat).status_code == 400
    assert hook(live, good, secret="wrong").json()["code"] == "bad_signature"
    assert message_count(live.app.state.okno.settings) == 0
    # an unknown channel id or the wrong kind in the path is a 404
    assert live.post("/hooks/telegram/999", json=good).status_code == 404
    assert live.post(f"/hooks/viber/{live.channel_id}", json=good).status_code == 404  # type: ignore[attr-defined]


def test_a_replayed_update_is_stored_once(live: TestClient) -> None:
    update = message_update("Продублируется?")
    assert hook(live, update).status_code == 200
    assert hook(live, update).status_code == 200
    dialog = the_dialog(live)
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == ["Продублируется?"]


def test_group_chats_and_edits_are_ignored(live: TestClient) -> None:
    group = message_update("всем привет")
    group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Чат"}
    assert hook(live, group).status_code == 200
    edit = {"update_id": 99, "edited_message": message_update("x")["message"]}
    assert hook(live, edit).status_code == 200
    assert message_count(live.app.state.okno.settings) == 0


def test_a_photo_is_downloaded_through_getFile_and_attached(
    live: TestClient, fake: FakeTelegram
) -> None:
    fake.add_file("AgACAgIAAxkBAAIB", JPEG, "photos/file_7.jpg")
    update = message_update(
        None,
        caption="Вот скриншот ошибки",
        photo=[
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 10},
            {
                "file_id": "AgACAgIAAxkBAAIB",
                "file_unique_id": "b",
                "width": 1280,
                "height": 853,
                "file_size": len(JPEG),
            },
        ],
    )
    assert hook(live, update).status_code == 200
    (message,) = staff_messages(live, the_dialog(live)["id"])
    assert message["text"] == "Вот скриншот ошибки"
    (attachment,) = message["attachments"]
    assert attachment["content_type"] == "image/jpeg"
    (get_file,) = fake.calls("/getFile")
    assert get_file.json() == {"file_id": "AgACAgIAAxkBAAIB"}
    root = staff_token(live, "root")
    downloaded = live.get(attachment["url"], headers=bearer(root))
    assert downloaded.status_code == 200 and downloaded.content == JPEG


def test_a_file_that_cannot_be_fetched_does_not_lose_the_message(live: TestClient) -> None:
    update = message_update(
        None,
        document={
            "file_id": "gone",
            "file_unique_id": "g",
            "file_name": "выписка.pdf",
            "mime_type": "application/pdf",
            "file_size": 1000,
        },
    )
    assert hook(live, update).status_code == 200
    (message,) = staff_messages(live, the_dialog(live)["id"])
    assert "выписка.pdf" in message["text"]
    assert message["meta"]["files_failed"] == [
        {"filename": "выписка.pdf", "reason": "download_failed"}
    ]


def test_the_customers_own_contact_links_by_verified_phone_but_anothers_does_not(
    live: TestClient,
) -> None:
    own = message_update(
        None,
        chat_id=555010,
        contact={"phone_number": "+79001234567", "first_name": "Иван", "user_id": 555010},
    )
    assert hook(live, own).status_code == 200
    other = message_update(
        None,
        chat_id=555011,
        sender=user(555011, "Мария", "Сидорова"),
        contact={"phone_number": "+7 900 765-43-21", "first_name": "Пётр", "user_id": 777},
    )
    assert hook(live, other).status_code == 200

    async def hashes(session: Any) -> list[Any]:
        from sqlalchemy import select

        from okno.customers.models import Customer

        return list((await session.execute(select(Customer.verified_phone_hash))).scalars())

    found = in_db(live.app.state.okno.settings, hashes)
    assert len([h for h in found if h]) == 1  # only the sender's own number counts
    assert all("79001234567" not in (h or "") for h in found)  # a keyed hash, not the number


def test_bot_buttons_become_an_inline_keyboard_and_a_press_continues_the_flow(
    settings: Settings, staff: Staff, fake: FakeTelegram
) -> None:
    from tests.bot.test_flows import FLOWS, KB

    # the threshold pinned: a vague message must leave the bot unsure on this four-article
    # base whatever the default is tuned to for the demo base
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        bot_answer_threshold=0.4,
    )
    channel_id = add_channel(
        fast, "telegram", bot_token=TOKEN, webhook_secret=SECRET, api_base=fake.url, bot="true"
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        root = staff_token(client, "root")
        for path, text in (("/api/v1/kb/import", KB), ("/api/v1/bot/flows/import", FLOWS)):
            r = client.post(
                path,
                content=text.encode(),
                headers={**bearer(root), "Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
        hook(client, message_update("потерял карту", chat_id=555020))
        (first,) = fake.wait_for("/sendMessage")
        keyboard = first.json()["reply_markup"]["inline_keyboard"]
        assert all(len(row) == 1 for row in keyboard)
        labels = [row[0]["text"] for row in keyboard]
        assert labels and all(row[0]["callback_data"].startswith("okno:") for row in keyboard)
        assert all(len(row[0]["callback_data"].encode()) <= 64 for row in keyboard)
        press = callback_update(keyboard[0][0]["callback_data"], chat_id=555020)
        assert hook(client, press).status_code == 200
        calls = fake.wait_for("/sendMessage", 2)
        assert calls[1].json()["chat_id"] == "555020"
        (answered,) = fake.calls("/answerCallbackQuery")
        assert answered.json() == {"callback_query_id": press["callback_query"]["id"]}
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        texts = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert texts[1]["text"] == labels[0]  # staff read which button was pressed


def test_429_5xx_and_a_timeout_are_retried_and_delivered_once(
    live: TestClient, fake: FakeTelegram
) -> None:
    hook(live, message_update("Где мой перевод?", chat_id=555030))
    dialog = the_dialog(live)
    too_many = Reply(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    fake.fail_next("/sendMessage", too_many)
    fake.fail_next("/sendMessage", Reply(502, "Bad Gateway"))
    fake.fail_next(
        "/sendMessage", Reply(200, {"ok": True, "result": {}}, delay=3.0)
    )  # hangs past 1 s
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: fake.sent, within=40, what="delivered after three failures")
    assert len(fake.calls("/sendMessage")) == 4
    assert [s["text"] for s in fake.sent] == ["Перевод зачислен."]
    assert eventually(
        lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent", within=5
    )


def test_a_customer_who_blocked_the_bot_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeTelegram
) -> None:
    hook(live, message_update("Добрый день", chat_id=555040))
    dialog = the_dialog(live)
    fake.blocked.add(555040)
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(
        lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "failed", what="failed"
    )
    assert len(fake.calls("/sendMessage")) == 1
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert errors.status_code == 200, errors.text
    assert "blocked" in errors.json()["errors"][0]["message"]


def test_messages_reach_the_customer_in_the_order_they_were_written(
    live: TestClient, fake: FakeTelegram
) -> None:
    hook(live, message_update("Вопрос", chat_id=555050))
    dialog = the_dialog(live)
    fake.fail_next("/sendMessage", Reply(500, "oops"))  # the first one has to wait
    take_and_reply(live, dialog["id"], "Первое")
    anna = staff_token(live, "anna")
    for text in ("Второе", "Третье"):
        r = live.post(
            f"/api/v1/conversations/{dialog['id']}/messages",
            json={"client_msg_id": cmid(), "text": text},
            headers=bearer(anna),
        )
        assert r.status_code == 201
    eventually(lambda: len(fake.sent) == 3, within=30, what="three delivered")
    assert [s["text"] for s in fake.sent] == ["Первое", "Второе", "Третье"]


async def test_polling_mode_fetches_updates_and_moves_its_cursor_once_stored(
    settings: Settings, staff: Staff, db: Database, fake: FakeTelegram
) -> None:
    from okno.channels import service as channels_service
    from okno.jobs.worker import JobContext

    async with db.transaction() as session:
        channel = await channels_service.add_messenger(
            session,
            kind="telegram",
            values={"bot_token": TOKEN, "mode": "polling", "api_base": fake.url},
            signing_key=settings.signing_key(),
        )
        channel_id = channel.id
    first, second = message_update("Первое"), message_update("Второе")
    fake.push_update(first)
    fake.push_update(second)
    quick = make_settings(settings.data_dir, settings.database_url, channel_poll_seconds=0)
    ctx = JobContext(settings=quick, job_id=0, attempt=1)
    await polling.prepare_poll(db, {}, ctx)
    async with db.read() as session:
        row = await session.get(Channel, channel_id)
        assert row is not None and row.cursor == str(second["update_id"] + 1)
    fake.push_update(second)  # Telegram sends an unconfirmed update again: no duplicate
    await polling.prepare_poll(db, {}, ctx)
    offsets = [c.json()["offset"] for c in fake.calls("/getUpdates")]
    assert offsets == [0, second["update_id"] + 1]
    from sqlalchemy import select

    from okno.conversations.models import Message

    async with db.read() as session:
        texts = list((await session.scalars(select(Message.text).order_by(Message.id))).all())
    assert texts == ["Первое", "Второе"]
    # a webhook to a polling channel is refused: it has no secret to check
    await asyncio.sleep(0)


@pytest.fixture
def with_bot(settings: Settings, staff: Staff, fake: FakeTelegram) -> Iterator[TestClient]:
    """A Telegram channel whose dialogs start with the bot, on a small knowledge base."""
    from tests.bot.test_flows import KB

    # the threshold pinned: a vague message must leave the bot unsure on this four-article
    # base whatever the default is tuned to for the demo base
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        bot_answer_threshold=0.4,
    )
    channel_id = add_channel(
        fast, "telegram", bot_token=TOKEN, webhook_secret=SECRET, api_base=fake.url, bot="true"
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        root = staff_token(client, "root")
        r = client.post(
            "/api/v1/kb/import",
            content=KB.encode(),
            headers={**bearer(root), "Content-Type": "application/yaml"},
        )
        assert r.status_code == 200, r.text
        yield client


def test_an_unsure_bot_offers_likely_questions_as_buttons_and_answers_the_pick(
    with_bot: TestClient, fake: FakeTelegram
) -> None:
    hook(with_bot, message_update("проблема с картой", chat_id=555060))
    (question,) = fake.wait_for("/sendMessage")
    body = question.json()
    assert body["text"].startswith("Уточните")
    rows = body["reply_markup"]["inline_keyboard"]
    labels = [row[0]["text"] for row in rows]
    assert labels == ["Как заблокировать карту", "Перевыпуск карты", "👤 Позвать оператора"]
    hook(with_bot, callback_update(rows[1][0]["callback_data"], chat_id=555060))
    calls = fake.wait_for("/sendMessage", 2)
    assert calls[1].json()["text"] == "Перевыпуск бесплатный, закажите его в приложении."
    dialog = eventually(lambda: conversations(with_bot, "root", "all"))[0]
    assert dialog["status"] == "bot"  # answered: nobody needs to take it


def test_the_person_button_hands_the_dialog_to_an_operator(
    with_bot: TestClient, fake: FakeTelegram
) -> None:
    hook(with_bot, message_update("проблема с картой", chat_id=555061))
    (question,) = fake.wait_for("/sendMessage")
    person = question.json()["reply_markup"]["inline_keyboard"][-1][0]["callback_data"]
    hook(with_bot, callback_update(person, chat_id=555061))
    waiting = eventually(lambda: conversations(with_bot, "anna"), what="handed to a person")
    assert waiting[0]["status"] == "waiting"
    handed = fake.wait_for("/sendMessage", 2)[1].json()["text"]
    assert "специалист" in handed
