"""Viber contract tests: documented callback bodies in, signed the way Viber signs them; the
exact REST Bot API requests out, against a fake Viber on loopback; forged, replayed and
malformed callbacks; delivered/seen/failed statuses; faults (tooManyRequests, 5xx, a
timeout, an unsubscribed customer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, staff_token
from tests.channels.fakes.server import Reply
from tests.channels.fakes.viber import (
    TOKEN,
    FakeViber,
    conversation_started,
    encode,
    message_callback,
    sign,
    status_callback,
)
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.channels.test_telegram import JPEG
from tests.channels.test_widget_api import PDF
from tests.conftest import make_settings

WELCOME = "Здравствуйте! Это чат банка. Напишите вопрос — ответим здесь."


@pytest.fixture
def fake() -> Iterator[FakeViber]:
    platform = FakeViber().start()
    yield platform
    platform.stop()


@contextmanager
def _client(settings: Settings, fake: FakeViber, **values: Any) -> Iterator[TestClient]:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )
    channel_id = add_channel(
        fast, "viber", auth_token=TOKEN, sender_name="Банк Окно", api_base=fake.url, **values
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeViber) -> Iterator[TestClient]:
    """okno with its worker, one Viber channel pointed at the fake, with a welcome text."""
    with _client(settings, fake, welcome_text=WELCOME) as client:
        yield client


def hook(
    client: TestClient, callback: Any, *, signature: str | None = "", raw: bytes | None = None
):
    """POST a callback as Viber does; signature "" means the right one, None none at all."""
    body = raw if raw is not None else encode(callback)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Viber-Content-Signature"] = signature or sign(body)
    return client.post(f"/hooks/viber/{client.channel_id}", content=body, headers=headers)  # type: ignore[attr-defined]


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


def last_delivery(client: TestClient, conversation_id: int) -> str:
    return str(staff_messages(client, conversation_id)[-1]["delivery"])


def test_a_text_message_lands_in_the_workspace_with_the_customers_name(live: TestClient) -> None:
    response = hook(live, message_callback("Добрый день, карта не работает за границей"))
    assert response.status_code == 200
    dialog = the_dialog(live)
    assert dialog["customer"]["name"] == "Иван Петров"
    assert dialog["channel"]["kind"] == "viber"
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts == ["Добрый день, карта не работает за границей"]


def test_the_operators_answer_leaves_as_one_send_message(live: TestClient, fake: FakeViber) -> None:
    hook(live, message_callback("Как узнать реквизиты?", user_id="Vb0userAAAA=="))
    take_and_reply(live, the_dialog(live)["id"], "В приложении: Счёт → Реквизиты.")
    (call,) = fake.wait_for("/pa/send_message")
    assert call.method == "POST"
    assert call.headers["x-viber-auth-token"] == TOKEN
    assert call.headers["content-type"].startswith("application/json")
    assert call.json() == {
        "receiver": "Vb0userAAAA==",
        "sender": {"name": "Банк Окно"},
        "type": "text",
        "text": "В приложении: Счёт → Реквизиты.",
    }
    assert eventually(lambda: last_delivery(live, the_dialog(live)["id"]) == "sent")


def test_forged_missing_and_malformed_callbacks_store_nothing(live: TestClient) -> None:
    good = message_callback("Помогите")
    body = encode(good)
    assert hook(live, good, signature=sign(body, "another-bots-token")).status_code == 403
    assert hook(live, good, signature=None).status_code == 403
    tampered = body.replace("Помогите".encode(), "Переведите деньги".encode())
    assert hook(live, None, raw=tampered, signature=sign(body)).status_code == 403
    assert hook(live, good, signature="0" * 64).json()["code"] == "bad_signature"
    # correctly signed but not a callback Viber would send
    assert hook(live, None, raw=b'{"event": "message", "sender": ').status_code == 400
    assert hook(live, {"message": {"type": "text", "text": "нет event"}}).status_code == 400
    no_sender = message_callback("x")
    del no_sender["sender"]
    assert hook(live, no_sender).status_code == 400
    no_token = message_callback("x")
    del no_token["message_token"]
    assert hook(live, no_token).json()["code"] == "malformed_webhook"
    assert hook(live, [1, 2]).status_code == 400
    assert message_count(live.app.state.okno.settings) == 0
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert "bad_signature" in errors.json()["errors"][0]["message"]


def test_a_redelivered_callback_is_stored_once(live: TestClient) -> None:
    callback = message_callback("Повторится?")
    assert hook(live, callback).status_code == 200
    assert hook(live, callback).status_code == 200
    dialog = the_dialog(live)
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == ["Повторится?"]


def test_conversation_started_is_answered_with_the_welcome_message_and_stores_nothing(
    live: TestClient, settings: Settings, fake: FakeViber
) -> None:
    response = hook(live, conversation_started())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"sender": {"name": "Банк Окно"}, "type": "text", "text": WELCOME}
    for event in ("subscribed", "unsubscribed", "webhook"):
        body = status_callback(event, 4912661846655238145)
        assert hook(live, body).status_code == 200
    assert message_count(live.app.state.okno.settings) == 0
    assert fake.calls("/pa/send_message") == []  # the welcome is the callback's answer


def test_without_a_welcome_text_conversation_started_gets_a_plain_ok(
    settings: Settings, staff: Staff, fake: FakeViber
) -> None:
    with _client(settings, fake) as client:
        response = hook(client, conversation_started())
        assert response.status_code == 200 and response.json() == {"ok": True}


def test_delivered_and_seen_move_the_operators_ticks_and_failed_shows_not_delivered(
    live: TestClient, fake: FakeViber
) -> None:
    hook(live, message_callback("Алло", user_id="U1=="))
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Слушаем вас")
    eventually(lambda: last_delivery(live, dialog["id"]) == "sent", what="sent")
    token = fake.sent[0]["message_token"]
    assert hook(live, status_callback("delivered", token, "U1==")).status_code == 200
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "delivered")
    hook(live, status_callback("seen", token, "U1=="))
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "read")
    hook(live, status_callback("delivered", token, "U1=="))  # late: no step back
    assert last_delivery(live, dialog["id"]) == "read"

    anna = staff_token(live, "anna")
    r = live.post(
        f"/api/v1/conversations/{dialog['id']}/messages",
        json={"client_msg_id": cmid(), "text": "Ещё вопрос?"},
        headers=bearer(anna),
    )
    assert r.status_code == 201
    eventually(lambda: len(fake.sent) == 2, what="second sent")
    eventually(lambda: last_delivery(live, dialog["id"]) == "sent", what="second recorded")
    failed = status_callback("failed", fake.sent[1]["message_token"], "U1==", desc="failure")
    assert hook(live, failed).status_code == 200
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "failed")


def test_a_picture_is_downloaded_from_its_media_url_and_attached(
    live: TestClient, fake: FakeViber
) -> None:
    url = fake.add_media("p/receipt.jpg", JPEG)
    callback = message_callback(
        "Чек об оплате", type="picture", media=url, thumbnail=url, file_name="receipt.jpg"
    )
    assert hook(live, callback).status_code == 200
    (message,) = staff_messages(live, the_dialog(live)["id"])
    assert message["text"] == "Чек об оплате"
    (attachment,) = message["attachments"]
    assert attachment["content_type"] == "image/jpeg"
    assert [r.path for r in fake.calls("/media/p/receipt.jpg")] == ["/media/p/receipt.jpg"]
    root = staff_token(live, "root")
    downloaded = live.get(attachment["url"], headers=bearer(root))
    assert downloaded.status_code == 200 and downloaded.content == JPEG


def test_a_file_a_location_and_a_contact_are_understood(live: TestClient, fake: FakeViber) -> None:
    url = fake.add_media("f/statement.pdf", PDF)
    hook(
        live,
        message_callback(
            None, type="file", media=url, size=len(PDF), file_name="выписка.pdf", user_id="U2=="
        ),
    )
    hook(
        live,
        message_callback(
            None, type="location", location={"lat": 55.7522, "lon": 37.6156}, user_id="U2=="
        ),
    )
    hook(
        live,
        message_callback(
            None,
            type="contact",
            contact={"name": "Пётр", "phone_number": "+79007654321"},
            user_id="U2==",
        ),
    )
    messages = eventually(
        lambda: len(m := staff_messages(live, the_dialog(live)["id"])) == 3 and m, what="3"
    )
    assert messages[0]["attachments"][0]["filename"] == "выписка.pdf"
    assert messages[1]["meta"]["location"] == {"lat": 55.7522, "lon": 37.6156}
    assert messages[2]["meta"]["contact"]["name"] == "Пётр"


def test_an_operators_file_reaches_viber_as_a_line_naming_it(
    live: TestClient, fake: FakeViber
) -> None:
    hook(live, message_callback("Пришлите выписку", user_id="U3=="))
    dialog = the_dialog(live)
    anna = staff_token(live, "anna")
    live.post(f"/api/v1/conversations/{dialog['id']}/assign", json={}, headers=bearer(anna))
    r = live.post(
        f"/api/v1/conversations/{dialog['id']}/attachments",
        data={"client_msg_id": cmid(), "text": "Ваша выписка"},
        files={"file": ("выписка.pdf", PDF, "application/pdf")},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text
    (call,) = fake.wait_for("/pa/send_message")
    text = call.json()["text"]
    assert text.startswith("Ваша выписка\n\n📎 выписка.pdf")
    assert "не передаются в Viber" in text
    assert call.json()["type"] == "text"


def test_bot_buttons_become_a_reply_keyboard_and_a_press_continues_the_flow(
    settings: Settings, staff: Staff, fake: FakeViber
) -> None:
    from tests.bot.test_flows import FLOWS, KB

    with _client(settings, fake, bot="true") as client:
        root = staff_token(client, "root")
        for path, text in (("/api/v1/kb/import", KB), ("/api/v1/bot/flows/import", FLOWS)):
            r = client.post(
                path,
                content=text.encode(),
                headers={**bearer(root), "Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
        hook(client, message_callback("потерял карту", user_id="U4=="))
        (first,) = fake.wait_for("/pa/send_message")
        keyboard = first.json()["keyboard"]
        assert keyboard["Type"] == "keyboard"
        buttons = keyboard["Buttons"]
        assert buttons and all(b["ActionType"] == "reply" for b in buttons)
        assert all(b["ActionBody"].startswith("okno:") and b["Silent"] for b in buttons)
        # Viber sends a reply button's ActionBody back as the text of a message
        press = message_callback(buttons[0]["ActionBody"], user_id="U4==")
        assert hook(client, press).status_code == 200
        calls = fake.wait_for("/pa/send_message", 2)
        assert calls[1].json()["receiver"] == "U4=="
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        said = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert said[1]["text"] == buttons[0]["Text"]  # staff read the label, not the reference


def test_too_many_requests_5xx_and_a_timeout_are_retried_and_delivered_once(
    live: TestClient, fake: FakeViber
) -> None:
    hook(live, message_callback("Где мой перевод?", user_id="U5=="))
    dialog = the_dialog(live)
    fake.fail_next(
        "/pa/send_message", Reply(200, {"status": 12, "status_message": "tooManyRequests"})
    )
    fake.fail_next("/pa/send_message", Reply(503, "Service Unavailable"))
    fake.fail_next("/pa/send_message", Reply(200, {"status": 0}, delay=3.0))  # hangs past 1 s
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: fake.sent, within=40, what="delivered after three failures")
    assert len(fake.calls("/pa/send_message")) == 4
    assert [s["text"] for s in fake.sent] == ["Перевод зачислен."]
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "sent", within=5)


def test_an_unsubscribed_customer_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeViber
) -> None:
    hook(live, message_callback("Добрый день", user_id="U6=="))
    dialog = the_dialog(live)
    fake.unsubscribed.add("U6==")
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(lambda: last_delivery(live, dialog["id"]) == "failed", what="failed")
    assert len(fake.calls("/pa/send_message")) == 1
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert "receiverNotSubscribed" in errors.json()["errors"][0]["message"]


def test_check_asks_get_account_info_and_a_wrong_token_is_reported(
    live: TestClient, fake: FakeViber
) -> None:
    root = staff_token(live, "root")
    r = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json() == {"ok": True, "detail": "Банк Окно"}
    (call,) = fake.calls("/pa/get_account_info")
    assert call.headers["x-viber-auth-token"] == TOKEN and call.json() == {}
    fake.token = "revoked"
    r = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.json()["ok"] is False and "invalidAuthToken" in r.json()["detail"]


async def test_set_webhook_registers_the_address_and_the_events_okno_reads(
    fake: FakeViber,
) -> None:
    import httpx

    from okno.channels.viber.adapter import ViberAdapter

    config = {"auth_token": TOKEN, "api_base": fake.url, "sender_name": "Банк"}
    async with httpx.AsyncClient() as client:
        await ViberAdapter().set_webhook(client, config, "https://okno.bank.example/hooks/viber/3")
    assert fake.webhook == {
        "url": "https://okno.bank.example/hooks/viber/3",
        "event_types": [
            "delivered",
            "seen",
            "failed",
            "subscribed",
            "unsubscribed",
            "conversation_started",
        ],
        "send_name": True,
        "send_photo": False,
    }


def test_settings_are_checked_when_the_channel_is_added(settings: Settings) -> None:
    from okno.errors import BadRequest

    with pytest.raises(BadRequest) as missing:
        add_channel(settings, "viber", sender_name="Банк")
    assert missing.value.code == "missing_setting"
    with pytest.raises(BadRequest) as long_name:
        add_channel(settings, "viber", auth_token=TOKEN, sender_name="Б" * 29)
    assert long_name.value.code == "invalid_setting"
