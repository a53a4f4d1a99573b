"""WhatsApp Cloud API contract tests: documented webhook bodies in, the exact Graph API
requests out, against a fake Cloud API on loopback; the verification handshake; forged,
replayed and malformed webhooks; statuses; the 24-hour window with its template; faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.adapter import Outbound, OutboundFile, SendFailed
from okno.channels.whatsapp.adapter import WhatsAppAdapter
from okno.conversations.models import Message
from okno.customers.models import Customer
from okno.db.base import utcnow
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, in_db, staff_token
from tests.channels.fakes.server import Reply
from tests.channels.fakes.whatsapp import (
    APP_SECRET,
    CUSTOMER,
    PHONE_NUMBER_ID,
    TEMPLATE,
    TOKEN,
    VERIFY_TOKEN,
    VERSION,
    FakeWhatsApp,
    message,
    signed,
    status,
    text,
)
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.conftest import make_settings

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
UNDELIVERABLE = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "Message Undeliverable."},
}
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"


@pytest.fixture
def fake() -> Iterator[FakeWhatsApp]:
    platform = FakeWhatsApp().start()
    yield platform
    platform.stop()


def channel_values(fake: FakeWhatsApp, **extra: str) -> dict[str, str]:
    return {
        "access_token": TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "template_name": TEMPLATE,
        "api_base": fake.url,
        **extra,
    }


def fast_settings(settings: Settings) -> Settings:
    return make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeWhatsApp) -> Iterator[TestClient]:
    """okno with its worker, one WhatsApp channel pointed at the fake."""
    fast = fast_settings(settings)
    channel_id = add_channel(fast, "whatsapp", **channel_values(fake))
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


def hook(
    client: TestClient,
    body: Any,
    *,
    secret: str | None = APP_SECRET,
    raw: bytes | None = None,
    signature: str | None = None,
) -> httpx.Response:
    data, good = signed(raw if raw is not None else body, secret or "")
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature or good
    path = f"/hooks/whatsapp/{client.channel_id}"  # type: ignore[attr-defined]
    return client.post(path, content=data, headers=headers)


def take_and_reply(client: TestClient, conversation_id: int, reply: str) -> None:
    anna = staff_token(client, "anna")
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/assign", json={}, headers=bearer(anna)
    )
    assert r.status_code == 200, r.text
    write(client, conversation_id, reply)


def write(client: TestClient, conversation_id: int, reply: str) -> None:
    anna = staff_token(client, "anna")
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": reply},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


def last_delivery(client: TestClient, conversation_id: int) -> str | None:
    return staff_messages(client, conversation_id)[-1]["delivery"]


def operator_deliveries(client: TestClient, conversation_id: int) -> list[str | None]:
    messages = staff_messages(client, conversation_id)
    return [m["delivery"] for m in messages if m["author_kind"] == "operator"]


def age_customer_messages(settings: Settings, hours: float) -> None:
    """Pretend the customer last wrote ``hours`` ago (the 24-hour window is WhatsApp's)."""

    async def age(session: AsyncSession) -> None:
        await session.execute(
            update(Message)
            .where(Message.author_kind == "customer")
            .values(created_at=utcnow() - timedelta(hours=hours))
        )

    in_db(settings, age)


def test_the_verification_handshake_echoes_the_challenge_only_for_the_verify_token(
    live: TestClient,
) -> None:
    path = f"/hooks/whatsapp/{live.channel_id}"  # type: ignore[attr-defined]
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": ""}
    ok = live.get(path, params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = live.get(path, params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "bad_verify_token"
    assert live.get(path, params={"hub.verify_token": VERIFY_TOKEN}).status_code == 400


def test_a_text_message_lands_in_the_workspace_with_the_profile_name(live: TestClient) -> None:
    response = hook(live, text("Здравствуйте, не приходит смс с кодом"))
    assert response.status_code == 200 and response.json() == {"ok": True}
    dialog = the_dialog(live)
    assert dialog["customer"]["name"] == "Иван Петров"
    assert dialog["channel"]["kind"] == "whatsapp"
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts == ["Здравствуйте, не приходит смс с кодом"]

    async def verified(session: AsyncSession) -> list[Any]:
        return list((await session.scalars(select(Customer.verified_phone_hash))).all())

    # WhatsApp verified the sender's number: the customer can be linked by it
    assert [h for h in in_db(live.app.state.okno.settings, verified) if h]


def test_the_operators_answer_leaves_as_one_messages_call(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Как пополнить карту?", sender="79160000002"))
    take_and_reply(live, the_dialog(live)["id"], "Через приложение, раздел «Пополнить».")
    (call,) = fake.wait_for("/messages")
    assert call.method == "POST"
    assert call.path == f"/{VERSION}/{PHONE_NUMBER_ID}/messages"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["content-type"].startswith("application/json")
    assert call.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "79160000002",
        "type": "text",
        "text": {"preview_url": False, "body": "Через приложение, раздел «Пополнить»."},
    }
    assert eventually(lambda: last_delivery(live, the_dialog(live)["id"]) == "sent")


def test_forged_missing_and_malformed_webhooks_store_nothing(live: TestClient) -> None:
    good = text("Мне нужна помощь")
    assert hook(live, good, secret="not-the-app-secret").status_code == 403
    assert hook(live, good, secret=None).status_code == 403
    assert hook(live, good, signature="sha256=" + "0" * 64).json()["code"] == "bad_signature"
    # a valid signature of another body does not sign this one
    _, other = signed(text("другое"))
    assert hook(live, good, signature=other).status_code == 403
    assert (
        hook(live, None, raw=b'{"object": "whatsapp_business_account", "entry": [').status_code
        == 400
    )
    assert hook(live, {"object": "page", "entry": []}).status_code == 400
    assert hook(live, {"object": "whatsapp_business_account"}).status_code == 400
    assert hook(live, [1, 2]).status_code == 400
    no_from = text("x")
    del no_from["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    assert hook(live, no_from).json()["code"] == "malformed_webhook"
    no_coordinates = message("location", {"name": "Офис"})
    assert hook(live, no_coordinates).status_code == 400
    assert message_count(live.app.state.okno.settings) == 0
    assert live.post("/hooks/whatsapp/999", json=good).status_code == 404


def test_a_replayed_notification_is_stored_once(live: TestClient) -> None:
    body = text("Продублируется?")
    assert hook(live, body).status_code == 200
    assert hook(live, body).status_code == 200
    dialog = the_dialog(live)
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == ["Продублируется?"]


def test_one_call_with_several_customers_messages_and_a_status_stores_them_all(
    live: TestClient,
) -> None:
    first = text("Первый клиент", sender="79160000101", name="Анна")
    second = text("Второй клиент", sender="79160000102", name="Борис")
    batch = first
    value = batch["entry"][0]["changes"][0]["value"]
    value["contacts"] += second["entry"][0]["changes"][0]["value"]["contacts"]
    value["messages"] += second["entry"][0]["changes"][0]["value"]["messages"]
    batch["entry"].append(status("wamid.unknown", "delivered")["entry"][0])
    assert hook(live, batch).status_code == 200
    dialogs = eventually(lambda: len(conversations(live)) == 2 and conversations(live))
    assert sorted(d["customer"]["name"] for d in dialogs) == ["Анна", "Борис"]


def test_another_numbers_changes_and_other_fields_are_left_alone(live: TestClient) -> None:
    other_number = text("для другого номера")
    other_number["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    assert hook(live, other_number).status_code == 200
    body = text("не сообщение")
    body["entry"][0]["changes"][0]["field"] = "message_template_status_update"
    assert hook(live, body).status_code == 200
    assert message_count(live.app.state.okno.settings) == 0


def test_an_image_is_fetched_through_its_media_url_with_the_token(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    fake.add_media("1245187269823413", JPEG, "image/jpeg")
    body = message(
        "image",
        {
            "caption": "Вот скриншот ошибки",
            "mime_type": "image/jpeg",
            "sha256": "u1W9ImlxV8+0bYnuRNnlZMIgkIrnL0uKqiz7qZlGHxE=",
            "id": "1245187269823413",
        },
    )
    assert hook(live, body).status_code == 200
    (stored,) = staff_messages(live, the_dialog(live)["id"])
    assert stored["text"] == "Вот скриншот ошибки"
    (attachment,) = stored["attachments"]
    assert attachment["content_type"] == "image/jpeg"
    info, download = fake.requests[0], fake.requests[1]
    assert info.method == "GET" and info.path == f"/{VERSION}/1245187269823413"
    assert download.path == "/whatsapp_business/attachments/1245187269823413"
    assert info.headers["authorization"] == download.headers["authorization"] == f"Bearer {TOKEN}"
    root = staff_token(live, "root")
    fetched = live.get(attachment["url"], headers=bearer(root))
    assert fetched.status_code == 200 and fetched.content == JPEG


def test_location_contacts_voice_and_a_missing_file_are_shown_to_the_operator(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(
        live,
        message(
            "location",
            {"latitude": 55.7539, "longitude": 37.6208, "name": "Офис", "address": "Москва"},
        ),
    )
    hook(
        live,
        message(
            "contacts",
            [
                {
                    "name": {"formatted_name": "Пётр Сидоров", "first_name": "Пётр"},
                    "phones": [
                        {"phone": "+7 900 765-43-21", "wa_id": "79007654321", "type": "CELL"}
                    ],
                }
            ],
        ),
    )
    hook(
        live,
        message(
            "audio",
            {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "gone", "voice": True},
        ),
    )
    hook(live, message("unsupported", None, errors=[{"code": 131051, "title": "Unsupported"}]))
    messages = staff_messages(live, the_dialog(live)["id"])
    assert messages[0]["text"] == "📍 Офис, Москва"
    assert messages[0]["meta"]["location"] == {"lat": 55.7539, "lon": 37.6208}
    # staff never see a phone number: the shared contact's number is masked
    assert messages[1]["text"] == "👤 Пётр Сидоров [телефон]"
    assert messages[1]["meta"]["contact"] == {"name": "Пётр Сидоров", "phone": "[телефон]"}
    assert messages[2]["meta"]["files_failed"][0]["reason"] == "download_failed"
    assert messages[2]["meta"]["files_failed"][0]["filename"].endswith(".ogg")
    assert "unsupported" in messages[3]["text"]


def test_delivered_and_read_statuses_reach_staff_and_a_failure_is_shown(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Статус?"))
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Проверяю.")
    eventually(lambda: last_delivery(live, dialog["id"]) == "sent")
    wamid = fake.sent[0]["id"]
    assert hook(live, status(wamid, "delivered")).status_code == 200
    assert last_delivery(live, dialog["id"]) == "delivered"
    assert hook(live, status(wamid, "read")).status_code == 200
    assert hook(live, status(wamid, "delivered")).status_code == 200  # late: no step back
    assert last_delivery(live, dialog["id"]) == "read"
    write(live, dialog["id"], "Ещё одно.")
    eventually(lambda: len(fake.sent) == 2)
    failed = status(
        fake.sent[1]["id"],
        "failed",
        errors=[UNDELIVERABLE],
    )
    assert hook(live, failed).status_code == 200
    assert last_delivery(live, dialog["id"]) == "failed"


def test_a_status_that_arrives_before_the_send_returns_is_not_lost(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    """Meta may post "delivered" or "failed" for a message before its API call answers with
    the message's id; okno applies the report once the send is recorded."""
    hook(live, text("Статус?"))
    dialog = the_dialog(live)
    answered: list[int] = []
    fake.on_sent = lambda wamid: answered.append(hook(live, status(wamid, "delivered")).status_code)
    take_and_reply(live, dialog["id"], "Проверяю.")
    eventually(lambda: last_delivery(live, dialog["id"]) == "delivered")
    assert answered == [200]
    answered.clear()
    fake.on_sent = lambda wamid: answered.append(
        hook(live, status(wamid, "failed", errors=[UNDELIVERABLE])).status_code
    )
    write(live, dialog["id"], "Ещё одно.")
    eventually(lambda: last_delivery(live, dialog["id"]) == "failed")
    assert answered == [200]
    assert operator_deliveries(live, dialog["id"]) == ["delivered", "failed"]


def test_a_file_is_uploaded_first_then_sent_by_its_media_id(fake: FakeWhatsApp) -> None:
    config = channel_values(fake)
    outbound = Outbound(
        message_id=1,
        conversation_id=1,
        recipient=CUSTOMER,
        text="Ваша выписка",
        files=[OutboundFile("выписка.pdf", "application/pdf", PDF)],
        customer_wrote_at=utcnow(),
    )

    async def send() -> str:
        async with httpx.AsyncClient() as client:
            return (await WhatsAppAdapter().send(client, config, outbound)).external_id

    wamid = asyncio.run(send())
    upload, sent = fake.requests
    assert upload.path == f"/{VERSION}/{PHONE_NUMBER_ID}/media"
    assert upload.headers["authorization"] == f"Bearer {TOKEN}"
    form = upload.form()
    assert form["messaging_product"] == "whatsapp" and form["type"] == "application/pdf"
    assert form["file"] == ("выписка.pdf", PDF)
    media_id = next(iter(fake.media))
    assert sent.json()["type"] == "document"
    assert sent.json()["document"] == {
        "id": media_id,
        "caption": "Ваша выписка",
        "filename": "выписка.pdf",
    }
    assert wamid == fake.sent[0]["id"]


def _send_buttons(fake: FakeWhatsApp, labels: list[str]) -> dict[str, Any]:
    outbound = Outbound(
        message_id=7,
        conversation_id=1,
        recipient=CUSTOMER,
        text="Что случилось с картой?",
        buttons=[{"label": label, "payload": f"okno:7:{i}"} for i, label in enumerate(labels)],
        customer_wrote_at=utcnow(),
    )

    async def send() -> None:
        async with httpx.AsyncClient() as client:
            await WhatsAppAdapter().send(client, channel_values(fake), outbound)

    asyncio.run(send())
    body: dict[str, Any] = fake.requests[-1].json()
    return body


def test_buttons_become_reply_buttons_a_list_or_numbered_text_by_what_fits(
    fake: FakeWhatsApp,
) -> None:
    three = _send_buttons(fake, ["Заблокировать", "Карту украли", "Оператор"])
    assert three["interactive"]["type"] == "button"
    assert three["interactive"]["action"]["buttons"][1] == {
        "type": "reply",
        "reply": {"id": "okno:7:1", "title": "Карту украли"},
    }
    long_label = _send_buttons(fake, ["Заблокировать на время", "Карту украли"])
    assert long_label["interactive"]["type"] == "list"  # a title over 20 does not fit a button
    rows = long_label["interactive"]["action"]["sections"][0]["rows"]
    assert rows[0] == {"id": "okno:7:0", "title": "Заблокировать на время"}
    ten = _send_buttons(fake, [f"Вариант {i}" for i in range(10)])
    assert len(ten["interactive"]["action"]["sections"][0]["rows"]) == 10
    many = _send_buttons(fake, [f"Вариант {i}" for i in range(12)])
    assert many["type"] == "text"
    assert "12. Вариант 11" in many["text"]["body"]
    assert len(fake.sent) == 4  # the fake refused none (limits checked as Meta documents)


def test_bot_buttons_and_a_list_reply_continue_the_flow(
    settings: Settings, staff: Staff, fake: FakeWhatsApp
) -> None:
    from tests.bot.test_flows import FLOWS, KB

    fast = fast_settings(settings)
    channel_id = add_channel(fast, "whatsapp", **channel_values(fake), bot="true")
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        root = staff_token(client, "root")
        for path, body in (("/api/v1/kb/import", KB), ("/api/v1/bot/flows/import", FLOWS)):
            r = client.post(
                path,
                content=body.encode(),
                headers={**bearer(root), "Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
        hook(client, text("потерял карту", sender="79160000020"))
        (first,) = fake.wait_for("/messages")
        interactive = first.json()["interactive"]
        assert interactive["type"] == "list"
        rows = interactive["action"]["sections"][0]["rows"]
        press = message(
            "interactive",
            {"type": "list_reply", "list_reply": {"id": rows[0]["id"], "title": rows[0]["title"]}},
            sender="79160000020",
        )
        assert hook(client, press).status_code == 200
        calls = fake.wait_for("/messages", 2)
        assert calls[1].json()["to"] == "79160000020"
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        customer = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert customer[1]["text"] == "Заблокировать на время"
        assert customer[1]["meta"]["button"]


def test_outside_the_24_hour_window_the_template_goes_and_the_answer_waits_for_the_customer(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Вопрос по кредиту", sender="79160000030"))
    dialog = the_dialog(live)
    age_customer_messages(live.app.state.okno.settings, hours=25)
    take_and_reply(live, dialog["id"], "Ваш кредит одобрен.")
    write(live, dialog["id"], "Подробности в приложении.")
    (invite,) = fake.wait_for("/messages")
    assert invite.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "79160000030",
        "type": "template",
        "template": {"name": TEMPLATE, "language": {"code": "ru"}},
    }
    eventually(lambda: last_delivery(live, dialog["id"]) == "waiting", what="both wait")
    assert operator_deliveries(live, dialog["id"]) == ["waiting", "waiting"]
    assert fake.texts_to("79160000030") == [f"template:{TEMPLATE}"]
    # The customer taps the template's quick reply: the window opens, the answers go, in order.
    tap = message("button", {"payload": "Ответить", "text": "Ответить"}, sender="79160000030")
    assert hook(live, tap).status_code == 200
    eventually(lambda: len(fake.sent) == 3, what="the waiting answers sent")
    assert fake.texts_to("79160000030") == [
        f"template:{TEMPLATE}",
        "Ваш кредит одобрен.",
        "Подробности в приложении.",
    ]
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["sent", "sent"])
    assert len(fake.calls("/messages")) == 3  # nothing twice, nothing refused


def test_a_131047_refusal_and_a_131047_failed_status_both_make_the_answer_wait(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Добрый день", sender="79160000040"))
    dialog = the_dialog(live)
    fake.window_closed.add("79160000040")  # WhatsApp's clock says the window is closed
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(lambda: last_delivery(live, dialog["id"]) == "waiting")
    eventually(lambda: fake.texts_to("79160000040") == [f"template:{TEMPLATE}"])
    fake.window_closed.clear()
    hook(live, text("Я тут", sender="79160000040"))
    eventually(lambda: fake.texts_to("79160000040")[-1] == "Здравствуйте!")
    # Accepted at first, then reported failed with 131047 as a status: waits again, invited again.
    wamid = fake.sent[-1]["id"]
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["sent"])
    failed = status(
        wamid,
        "failed",
        recipient="79160000040",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {
                    "details": "Message failed to send because more than 24 hours "
                    "have passed since the customer last replied to this number."
                },
            }
        ],
    )
    assert hook(live, failed).status_code == 200
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["waiting"])
    eventually(lambda: fake.texts_to("79160000040").count(f"template:{TEMPLATE}") == 2)
    hook(live, text("Всё ещё тут", sender="79160000040"))
    eventually(lambda: fake.texts_to("79160000040").count("Здравствуйте!") == 2)


def test_without_a_template_the_answer_waits_and_the_admin_sees_why(
    settings: Settings, staff: Staff, fake: FakeWhatsApp
) -> None:
    fast = fast_settings(settings)
    values = channel_values(fake)
    del values["template_name"]
    channel_id = add_channel(fast, "whatsapp", **values)
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        hook(client, text("Вопрос", sender="79160000050"))
        dialog = the_dialog(client)
        age_customer_messages(fast, hours=30)
        take_and_reply(client, dialog["id"], "Ответ")
        eventually(lambda: last_delivery(client, dialog["id"]) == "waiting")
        root = staff_token(client, "root")

        def errors() -> list[dict[str, Any]]:
            r = client.get(f"/api/v1/channels/{channel_id}/errors", headers=bearer(root))
            return list(r.json()["errors"])

        found = eventually(errors, what="an error about the missing template")
        assert "template_name" in found[0]["message"]
        assert fake.calls("/messages") == []


def test_rate_limits_5xx_and_a_timeout_are_retried_and_delivered_once(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Где мой перевод?", sender="79160000060"))
    dialog = the_dialog(live)
    throughput = {
        "error": {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Cloud API message throughput has been reached.",
            },
            "fbtrace_id": "A1",
        }
    }
    pair = json.loads(json.dumps(throughput).replace("130429", "131056"))
    fake.fail_next("/messages", Reply(400, throughput))
    fake.fail_next("/messages", Reply(400, pair))
    fake.fail_next(
        "/messages", Reply(503, {"error": {"message": "Service unavailable", "code": 2}})
    )
    fake.fail_next("/messages", Reply(200, {"messages": [{"id": "late"}]}, delay=3.0))
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: fake.sent, within=60, what="delivered after four failures")
    assert len(fake.calls("/messages")) == 5
    assert fake.texts_to("79160000060") == ["Перевод зачислен."]
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "sent", within=5)


def test_a_number_without_whatsapp_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeWhatsApp
) -> None:
    hook(live, text("Добрый день", sender="79160000070"))
    dialog = the_dialog(live)
    fake.not_on_whatsapp.add("79160000070")
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(lambda: last_delivery(live, dialog["id"]) == "failed", what="failed")
    assert len(fake.calls("/messages")) == 1
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert "131026" in errors.json()["errors"][0]["message"]


def test_check_reports_the_verified_name_and_refuses_a_bad_token(fake: FakeWhatsApp) -> None:
    async def check(token: str) -> str:
        async with httpx.AsyncClient() as client:
            return await WhatsAppAdapter().check(client, channel_values(fake, access_token=token))

    assert asyncio.run(check(TOKEN)) == "Банк Окно +1 555-078-3881"
    with pytest.raises(SendFailed) as refused:
        asyncio.run(check("expired"))
    assert "#190" in refused.value.reason and not refused.value.retry
    assert TOKEN not in refused.value.reason
