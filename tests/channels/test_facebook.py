"""Facebook Messenger contract tests: documented webhook events in, the exact Send API
requests out, against a fake Graph API on loopback; the verification handshake; forged,
replayed and malformed webhooks; delivery and read watermarks; the 24-hour rule with the
HUMAN_AGENT tag; faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.adapter import Outbound, OutboundFile, SendFailed
from okno.channels.facebook.adapter import FacebookAdapter
from okno.conversations.models import Message
from okno.db.base import utcnow
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, in_db, staff_token
from tests.channels.fakes.facebook import (
    APP_SECRET,
    PAGE_ID,
    PAGE_TOKEN,
    PSID,
    VERIFY_TOKEN,
    VERSION,
    FakeMessenger,
    attachments,
    delivery,
    event,
    now_ms,
    postback,
    read,
    signed,
    text,
)
from tests.channels.fakes.server import Reply
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.conftest import make_settings

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"


@pytest.fixture
def fake() -> Iterator[FakeMessenger]:
    platform = FakeMessenger().start()
    yield platform
    platform.stop()


def channel_values(fake: FakeMessenger, **extra: str) -> dict[str, str]:
    return {
        "page_access_token": PAGE_TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "page_id": PAGE_ID,
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
def live(settings: Settings, staff: Staff, fake: FakeMessenger) -> Iterator[TestClient]:
    """okno with its worker, one Messenger channel pointed at the fake."""
    fast = fast_settings(settings)
    channel_id = add_channel(fast, "facebook", **channel_values(fake))
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


def hook(
    client: TestClient,
    body: Any,
    *,
    secret: str | None = APP_SECRET,
    raw: bytes | None = None,
) -> httpx.Response:
    data, signature = signed(raw if raw is not None else body, secret or "")
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature
    path = f"/hooks/facebook/{client.channel_id}"  # type: ignore[attr-defined]
    return client.post(path, content=data, headers=headers)


def write(client: TestClient, conversation_id: int, reply: str, *, take: bool = False) -> None:
    anna = staff_token(client, "anna")
    if take:
        r = client.post(
            f"/api/v1/conversations/{conversation_id}/assign", json={}, headers=bearer(anna)
        )
        assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": reply},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


def operator_deliveries(client: TestClient, conversation_id: int) -> list[str | None]:
    messages = staff_messages(client, conversation_id)
    return [m["delivery"] for m in messages if m["author_kind"] == "operator"]


def age_customer_messages(settings: Settings, hours: float) -> None:
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
    path = f"/hooks/facebook/{live.channel_id}"  # type: ignore[attr-defined]
    query = {"hub.mode": "subscribe", "hub.challenge": "CHALLENGE_ACCEPTED"}
    ok = live.get(path, params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert ok.status_code == 200 and ok.text == "CHALLENGE_ACCEPTED"
    assert live.get(path, params={**query, "hub.verify_token": "x"}).status_code == 403
    bad_mode = {**query, "hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN}
    assert live.get(path, params=bad_mode).status_code == 400


def test_a_text_lands_and_the_operators_answer_leaves_as_one_send_api_call(
    live: TestClient, fake: FakeMessenger
) -> None:
    response = hook(live, text("Здравствуйте, как закрыть вклад?"))
    assert response.status_code == 200 and response.json() == {"ok": True}
    dialog = the_dialog(live)
    assert dialog["channel"]["kind"] == "facebook"
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == [
        "Здравствуйте, как закрыть вклад?"
    ]
    write(live, dialog["id"], "В приложении: Вклады → Закрыть.", take=True)
    (call,) = fake.wait_for("/me/messages")
    assert call.method == "POST" and call.path == f"/{VERSION}/me/messages"
    assert call.query == {"access_token": [PAGE_TOKEN]}
    assert call.headers["content-type"].startswith("application/json")
    assert call.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "В приложении: Вклады → Закрыть."},
    }
    assert eventually(lambda: operator_deliveries(live, dialog["id"]) == ["sent"])


def test_forged_missing_and_malformed_webhooks_store_nothing(live: TestClient) -> None:
    good = text("Помогите")
    assert hook(live, good, secret="forged").status_code == 403
    assert hook(live, good, secret=None).json()["code"] == "bad_signature"
    assert hook(live, None, raw=b'{"object": "page", "entry": [{').status_code == 400
    assert hook(live, {"object": "whatsapp_business_account", "entry": []}).status_code == 400
    assert hook(live, {"object": "page", "entry": {}}).status_code == 400
    no_sender = text("x")
    del no_sender["entry"][0]["messaging"][0]["sender"]
    assert hook(live, no_sender).json()["code"] == "malformed_webhook"
    no_mid = event({"message": {"text": "без mid"}})
    assert hook(live, no_mid).status_code == 400
    bad_watermark = read(now_ms())
    bad_watermark["entry"][0]["messaging"][0]["read"]["watermark"] = "вчера"
    assert hook(live, bad_watermark).status_code == 400
    assert message_count(live.app.state.okno.settings) == 0


def test_a_replayed_event_is_stored_once_and_echoes_and_other_pages_are_ignored(
    live: TestClient,
) -> None:
    body = text("Продублируется?")
    assert hook(live, body).status_code == 200
    assert hook(live, body).status_code == 200
    echo = text("это написала страница", is_echo=True, app_id=1517776481860111)
    assert hook(live, echo).status_code == 200
    other_page = text("чужая страница")
    other_page["entry"][0]["id"] = "999"
    assert hook(live, other_page).status_code == 200
    dialog = the_dialog(live)
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == ["Продублируется?"]
    assert message_count(live.app.state.okno.settings) == 1


def test_an_image_and_a_location_are_stored_and_the_image_fetched_from_its_url(
    live: TestClient, fake: FakeMessenger
) -> None:
    url = fake.add_file("v/t1.15752-9/receipt_123.jpg", JPEG)
    body = attachments(
        [
            {"type": "image", "payload": {"url": url}},
            {
                "type": "location",
                "payload": {"coordinates": {"lat": 59.9386, "long": 30.3141}},
            },
        ]
    )
    assert hook(live, body).status_code == 200
    (stored,) = staff_messages(live, the_dialog(live)["id"])
    (attachment,) = stored["attachments"]
    assert attachment["filename"] == "receipt_123.jpg"
    assert attachment["content_type"] == "image/jpeg"
    assert stored["meta"]["location"] == {"lat": 59.9386, "lon": 30.3141}
    root = staff_token(live, "root")
    assert live.get(attachment["url"], headers=bearer(root)).content == JPEG


def test_a_file_is_uploaded_as_multipart_filedata(fake: FakeMessenger) -> None:
    outbound = Outbound(
        message_id=1,
        conversation_id=1,
        recipient=PSID,
        text="Ваша выписка",
        files=[OutboundFile("выписка.pdf", "application/pdf", PDF)],
        customer_wrote_at=utcnow(),
    )

    async def send() -> str:
        async with httpx.AsyncClient() as client:
            sent = await FacebookAdapter().send(client, channel_values(fake), outbound)
            return sent.external_id

    first = asyncio.run(send())
    text_call, file_call = fake.requests
    assert text_call.json()["message"] == {"text": "Ваша выписка"}
    assert file_call.path == f"/{VERSION}/me/messages"
    assert file_call.query == {"access_token": [PAGE_TOKEN]}
    form = file_call.form()
    assert form["recipient"] == f'{{"id": "{PSID}"}}'
    assert form["messaging_type"] == "RESPONSE"
    assert form["message"] == '{"attachment": {"type": "file", "payload": {"is_reusable": false}}}'
    assert form["filedata"] == ("выписка.pdf", PDF)
    assert first == fake.sent[0]["message_id"]


def test_a_long_answer_goes_in_pieces_messenger_takes(fake: FakeMessenger) -> None:
    long = ("Условия вклада. " * 200).strip()
    outbound = Outbound(
        message_id=2, conversation_id=1, recipient=PSID, text=long, customer_wrote_at=utcnow()
    )

    async def send() -> None:
        async with httpx.AsyncClient() as client:
            await FacebookAdapter().send(client, channel_values(fake), outbound)

    asyncio.run(send())
    pieces = fake.texts_to(PSID)
    assert len(pieces) == 2 and all(len(p) <= 2000 for p in pieces)
    assert " ".join(pieces) == long


def test_bot_buttons_become_quick_replies_and_a_press_continues_the_flow(
    settings: Settings, staff: Staff, fake: FakeMessenger
) -> None:
    from tests.bot.test_flows import FLOWS, KB

    fast = fast_settings(settings)
    channel_id = add_channel(fast, "facebook", **channel_values(fake), bot="true")
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
        hook(client, text("потерял карту", psid="7001"))
        (first,) = fake.wait_for("/me/messages")
        message = first.json()["message"]
        quick = message["quick_replies"]
        # "Заблокировать на время" is over 20 characters: options are numbered in the text
        assert "1. Заблокировать на время" in message["text"]
        assert [q["title"] for q in quick][:2] == ["1. Заблокировать на…", "2. Карту украли"]
        assert all(q["content_type"] == "text" and q["payload"].startswith("okno:") for q in quick)
        press = text(quick[0]["title"], psid="7001", quick_reply={"payload": quick[0]["payload"]})
        assert hook(client, press).status_code == 200
        calls = fake.wait_for("/me/messages", 2)
        assert calls[1].json()["recipient"] == {"id": "7001"}
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        customer = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert customer[1]["meta"]["button"]  # the flow's own payload, resolved


def test_a_postback_is_a_button_press(live: TestClient) -> None:
    assert hook(live, postback("Начать", "GET_STARTED")).status_code == 200
    (stored,) = staff_messages(live, the_dialog(live)["id"])
    assert stored["text"] == "Начать"


def test_delivery_mids_and_the_read_watermark_reach_staff(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Вопрос"))
    dialog = the_dialog(live)
    write(live, dialog["id"], "Первый ответ", take=True)
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["sent"])
    assert hook(live, delivery([fake.sent[0]["message_id"]], now_ms())).status_code == 200
    assert operator_deliveries(live, dialog["id"]) == ["delivered"]
    watermark = now_ms()
    time.sleep(0.05)
    write(live, dialog["id"], "Второй ответ, после прочтения")
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["delivered", "sent"])
    # read up to the watermark: the first answer; the second was written after it
    assert hook(live, read(watermark)).status_code == 200
    assert operator_deliveries(live, dialog["id"]) == ["read", "sent"]
    assert hook(live, read(now_ms())).status_code == 200
    assert operator_deliveries(live, dialog["id"]) == ["read", "read"]
    # another customer's read receipt touches nothing of this dialog
    assert hook(live, read(now_ms(), psid="0000")).status_code == 200


def test_after_24_hours_an_operator_answers_with_the_human_agent_tag(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Вопрос в пятницу"))
    dialog = the_dialog(live)
    age_customer_messages(live.app.state.okno.settings, hours=50)
    write(live, dialog["id"], "Отвечаем в понедельник.", take=True)
    (call,) = fake.wait_for("/me/messages")
    assert call.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Отвечаем в понедельник."},
    }


def test_after_7_days_the_answer_waits_for_the_customer_and_goes_when_they_write(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Старый вопрос"))
    dialog = the_dialog(live)
    age_customer_messages(live.app.state.okno.settings, hours=24 * 8)
    write(live, dialog["id"], "Простите за задержку.", take=True)
    write(live, dialog["id"], "Вопрос решён.")
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["waiting", "waiting"])
    assert fake.calls("/me/messages") == []  # Messenger has no invitation: nothing is sent
    assert hook(live, text("Есть новости?")).status_code == 200
    eventually(lambda: len(fake.sent) == 2, what="both answers after the customer wrote")
    assert fake.texts_to(PSID) == ["Простите за задержку.", "Вопрос решён."]
    assert all(s["messaging_type"] == "RESPONSE" for s in fake.sent)


def test_an_outside_window_refusal_makes_the_answer_wait(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Здравствуйте"))
    dialog = the_dialog(live)
    fake.window_closed.add(PSID)  # Meta's clock disagrees with okno's
    write(live, dialog["id"], "Добрый день!", take=True)
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["waiting"])
    fake.window_closed.clear()
    hook(live, text("Я здесь"))
    eventually(lambda: fake.texts_to(PSID) == ["Добрый день!"])
    assert len(fake.calls("/me/messages")) == 2


def test_rate_limits_5xx_and_a_timeout_are_retried_and_delivered_once(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Где мой перевод?"))
    dialog = the_dialog(live)
    rate = {
        "error": {
            "message": "(#613) Calls to this api have exceeded the rate limit.",
            "type": "OAuthException",
            "code": 613,
            "fbtrace_id": "A1",
        }
    }
    fake.fail_next("/me/messages", Reply(400, rate))
    fake.fail_next("/me/messages", Reply(500, {"error": {"message": "unknown", "code": 1}}))
    fake.fail_next("/me/messages", Reply(200, {"message_id": "late"}, delay=3.0))
    write(live, dialog["id"], "Перевод зачислен.", take=True)
    eventually(lambda: fake.sent, within=60, what="delivered after three failures")
    assert len(fake.calls("/me/messages")) == 4
    assert fake.texts_to(PSID) == ["Перевод зачислен."]
    assert eventually(lambda: operator_deliveries(live, dialog["id"]) == ["sent"], within=5)


def test_a_person_who_is_not_available_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeMessenger
) -> None:
    hook(live, text("Добрый день"))
    dialog = the_dialog(live)
    fake.unavailable.add(PSID)
    write(live, dialog["id"], "Здравствуйте!", take=True)
    eventually(lambda: operator_deliveries(live, dialog["id"]) == ["failed"], what="failed")
    assert len(fake.calls("/me/messages")) == 1
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert "#551" in errors.json()["errors"][0]["message"]
    assert PAGE_TOKEN not in errors.text


def test_check_names_the_page_and_refuses_a_bad_token(fake: FakeMessenger) -> None:
    async def check(token: str) -> str:
        async with httpx.AsyncClient() as client:
            values = channel_values(fake, page_access_token=token)
            return await FacebookAdapter().check(client, values)

    assert asyncio.run(check(PAGE_TOKEN)) == "Банк Окно"
    with pytest.raises(SendFailed) as refused:
        asyncio.run(check("expired"))
    assert "#190" in refused.value.reason and not refused.value.retry
