"""Apple Messages for Business contract tests: Apple's documented calls in (bearer JWT,
source-id/destination-id headers, gzip JSON bodies, encrypted attachments, interactive
replies), the exact REST calls okno makes out, against a fake Apple API on loopback;
forged, expired, misaddressed, replayed and malformed calls; faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.channels.apple.adapter import BID, decrypt, message_uuid
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, staff_token
from tests.channels.fakes.apple import (
    BUSINESS_ID,
    CUSTOMER,
    MSP_ID,
    SECRET,
    SECRET_BYTES,
    FakeApple,
    apple_call,
    apple_token,
    text_message,
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

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cf00000301010018dd8db00000000049454e44ae426082"
)


@pytest.fixture
def fake() -> Iterator[FakeApple]:
    platform = FakeApple().start()
    yield platform
    platform.stop()


def _live(settings: Settings, fake: FakeApple, **extra: str) -> TestClient:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )
    channel_id = add_channel(
        fast,
        "apple",
        business_id=BUSINESS_ID,
        msp_id=MSP_ID,
        api_secret=SECRET,
        api_base=f"{fake.url}/v1",
        **extra,
    )
    client = TestClient(create_app(fast))
    client.channel_id = channel_id  # type: ignore[attr-defined]
    return client


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeApple) -> Iterator[TestClient]:
    """okno with its worker, one Apple channel pointed at the fake."""
    with _live(settings, fake) as client:
        yield client


def hook(client: TestClient, message: dict[str, Any], **options: Any) -> Any:
    body, headers = apple_call(message, **options)
    return client.post(f"/hooks/apple/{client.channel_id}", content=body, headers=headers)  # type: ignore[attr-defined]


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


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


def test_a_signed_gzip_text_message_lands_in_the_workspace(live: TestClient) -> None:
    response = hook(live, text_message("Здравствуйте, не проходит платёж 😕"))
    assert response.status_code == 200 and response.json() == {"ok": True}
    dialog = the_dialog(live)
    assert dialog["channel"]["kind"] == "apple"
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts == ["Здравствуйте, не проходит платёж 😕"]
    # an MSP relaying Apple's call unpacked is taken the same way
    assert hook(live, text_message("И ещё вопрос"), compress=False).status_code == 200
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts[-1] == "И ещё вопрос"


def test_the_operators_answer_is_one_signed_POST_message(live: TestClient, fake: FakeApple) -> None:
    hook(live, text_message("Как пополнить карту?"))
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Через приложение, раздел «Пополнить».")
    (call,) = fake.wait_for("/v1/message")
    assert call.method == "POST" and call.path == "/v1/message"
    message_id = message_uuid(live.channel_id, _last_message_id(live, dialog["id"]))  # type: ignore[attr-defined]
    assert call.json() == {
        "v": 1,
        "id": message_id,
        "sourceId": BUSINESS_ID,
        "destinationId": CUSTOMER,
        "type": "text",
        "body": "Через приложение, раздел «Пополнить».",
    }
    assert call.headers["content-type"] == "application/json"
    assert call.headers["id"] == message_id
    assert call.headers["source-id"] == BUSINESS_ID
    assert call.headers["destination-id"] == CUSTOMER
    assert call.headers["auto-reply"] == "false"  # a person answered, not the bot
    scheme, _, token = call.headers["authorization"].partition(" ")
    claims = jwt.decode(token, SECRET_BYTES, algorithms=["HS256"])
    assert scheme == "Bearer" and claims["iss"] == MSP_ID and abs(claims["iat"] - time.time()) < 60
    assert eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent")


def _last_message_id(client: TestClient, conversation_id: int) -> int:
    return int(staff_messages(client, conversation_id)[-1]["id"])


def test_forged_expired_misaddressed_and_malformed_calls_store_nothing(live: TestClient) -> None:
    good = text_message("Мне нужна помощь")
    cases = [
        (apple_token(secret=b"another-secret-entirely-0123456789"), BUSINESS_ID, "bad_signature"),
        (apple_token(aud="someone-elses-msp"), BUSINESS_ID, "bad_signature"),
        (apple_token(issued=time.time() - 2 * 3600), BUSINESS_ID, "token_expired"),
        (
            jwt.encode({"aud": MSP_ID}, SECRET_BYTES, algorithm="HS256"),
            BUSINESS_ID,
            "bad_signature",
        ),
        (apple_token(), "urn:biz:another-business", "wrong_destination"),
    ]
    for token, destination, code in cases:
        response = hook(live, good, token=token, destination=destination)
        assert (response.status_code, response.json()["code"]) == (403, code), code
    body, headers = apple_call(good)
    del headers["Authorization"]
    response = live.post(f"/hooks/apple/{live.channel_id}", content=body, headers=headers)  # type: ignore[attr-defined]
    assert response.status_code == 403
    expired = jwt.encode(
        {"aud": MSP_ID, "iat": int(time.time()) - 700, "exp": int(time.time()) - 600},
        SECRET_BYTES,
        algorithm="HS256",
    )
    assert hook(live, good, token=expired).json()["code"] == "token_expired"
    # well signed, but not a message
    url = f"/hooks/apple/{live.channel_id}"  # type: ignore[attr-defined]
    body, headers = apple_call(good, compress=False)
    for raw in (b'{"type": "text", "id": ', b"[1, 2]", b"\x1f\x8bnot gzip at all"):
        assert live.post(url, content=raw, headers=headers).status_code == 400
    assert hook(live, {"type": "text", "body": "без id", "sourceId": CUSTOMER}).status_code == 400
    assert hook(live, {**good, "attachments": [{"name": "x.pdf"}]}).status_code == 400
    assert message_count(live.app.state.okno.settings) == 0


def test_a_replayed_message_is_stored_once(live: TestClient) -> None:
    message = text_message("Продублируется?")
    assert hook(live, message).status_code == 200
    assert hook(live, message, compress=False).status_code == 200
    assert [m["text"] for m in staff_messages(live, the_dialog(live)["id"])] == ["Продублируется?"]


def test_typing_and_close_events_store_nothing(live: TestClient) -> None:
    for kind in ("typing_start", "typing_end", "close"):
        event = {"v": 1, "type": kind, "id": f"{kind}-1", "sourceId": CUSTOMER}
        assert hook(live, event).status_code == 200
    assert message_count(live.app.state.okno.settings) == 0


def test_an_encrypted_attachment_is_fetched_through_preDownload_and_decrypted(
    live: TestClient, fake: FakeApple
) -> None:
    attachment = {**fake.add_attachment(PNG), "name": "IMG_0042.png", "mimeType": "image/png"}
    message = text_message("\ufffcВот скриншот", attachments=[attachment])
    assert hook(live, message).status_code == 200
    (stored,) = staff_messages(live, the_dialog(live)["id"])
    assert stored["text"] == "Вот скриншот"
    (file,) = stored["attachments"]
    assert file["content_type"] == "image/png"
    (pre,) = fake.calls("/v1/preDownload")
    assert pre.headers["source-id"] == BUSINESS_ID
    assert pre.headers["url"] == attachment["url"]
    assert pre.headers["owner"] == attachment["owner"]
    assert pre.headers["signature"] == attachment["signature-base64"]
    downloaded = live.get(file["url"], headers=bearer(staff_token(live, "root")))
    assert downloaded.status_code == 200 and downloaded.content == PNG


def test_an_operators_file_is_encrypted_uploaded_and_sent_as_an_attachment(
    live: TestClient, fake: FakeApple
) -> None:
    hook(live, text_message("Пришлите выписку"))
    dialog = the_dialog(live)
    anna = staff_token(live, "anna")
    live.post(f"/api/v1/conversations/{dialog['id']}/assign", json={}, headers=bearer(anna))
    r = live.post(
        f"/api/v1/conversations/{dialog['id']}/attachments",
        data={"client_msg_id": cmid(), "text": "Вот она"},
        files={"file": ("statement.png", PNG, "image/png")},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text
    (call,) = fake.wait_for("/v1/message")
    sent = call.json()
    assert sent["type"] == "text" and sent["body"] == "Вот она\n\ufffc"
    (attachment,) = sent["attachments"]
    (upload_id, uploaded), *_ = fake.uploads.items()
    assert attachment["url"] == f"https://p1.mmcs.example/{upload_id}"
    assert attachment["owner"] == f"owner-{upload_id}"
    assert attachment["name"] == "statement.png" and attachment["mimeType"] == "image/png"
    assert attachment["size"] == str(len(uploaded)) and attachment["key"].startswith("00")
    assert uploaded != PNG and decrypt(uploaded, attachment["key"]) == PNG  # encrypted on the wire
    (pre,) = fake.calls("/v1/preUpload")
    assert pre.headers["size"] == str(len(uploaded))


def test_bot_buttons_become_a_quick_reply_and_the_pick_continues_the_flow(
    settings: Settings, staff: Staff, fake: FakeApple
) -> None:
    from tests.bot.test_flows import FLOWS, KB

    with _live(settings, fake, bot="true") as client:
        root = staff_token(client, "root")
        for path, text in (("/api/v1/kb/import", KB), ("/api/v1/bot/flows/import", FLOWS)):
            r = client.post(
                path,
                content=text.encode(),
                headers={**bearer(root), "Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
        hook(client, text_message("потерял карту"))
        (first,) = fake.wait_for("/v1/message")
        sent = first.json()
        assert first.headers["auto-reply"] == "true"  # the bot answered
        assert sent["type"] == "interactive"
        data = sent["interactiveData"]
        assert data["bid"] == BID
        quick = data["data"]["quick-reply"]
        assert quick["summaryText"] == "Что случилось с картой?"
        labels = [item["title"] for item in quick["items"]]
        assert labels == ["Заблокировать на время", "Карту украли", "Позвать оператора"]
        assert all(item["identifier"].startswith("okno:") for item in quick["items"])
        assert data["data"]["version"] == "1.0" and data["data"]["requestIdentifier"]
        reply = {
            "v": 1,
            "type": "interactive",
            "id": "3f1c4a62-77c1-4c1e-9b1e-4e7b1b7c0a01",
            "sourceId": CUSTOMER,
            "destinationId": BUSINESS_ID,
            "interactiveData": {
                "bid": BID,
                "data": {
                    "quick-reply": {
                        "selectedIdentifier": quick["items"][0]["identifier"],
                        "selectedIndex": 0,
                    },
                    "version": "1.0",
                    "requestIdentifier": data["data"]["requestIdentifier"],
                },
            },
        }
        assert hook(client, reply).status_code == 200
        calls = fake.wait_for("/v1/message", 2)
        assert calls[1].json()["body"].startswith("Блокировка в приложении")
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        said = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert said[1]["text"] == "Заблокировать на время"  # staff read which option was picked


def test_many_or_long_options_become_a_list_picker_after_the_text() -> None:
    from okno.channels.adapter import Outbound
    from okno.channels.apple.adapter import _interactive, _quick_reply_fits

    buttons = [
        {"label": f"Вариант с длинным названием {i}", "payload": f"okno:9:{i}"} for i in range(6)
    ]
    message = Outbound(
        message_id=9, conversation_id=1, recipient=CUSTOMER, text="Выберите", buttons=buttons
    )
    assert not _quick_reply_fits(buttons)
    picker = _interactive(message, quick=False)["interactiveData"]
    items = picker["data"]["listPicker"]["sections"][0]["items"]
    assert [i["identifier"] for i in items] == [b["payload"] for b in buttons]
    assert picker["receivedMessage"]["title"] and picker["bid"] == BID


def test_429_5xx_and_a_timeout_are_retried_and_delivered_once(
    live: TestClient, fake: FakeApple
) -> None:
    hook(live, text_message("Где мой перевод?"))
    dialog = the_dialog(live)
    fake.fail_next("/v1/message", Reply(429, b"", headers={"Retry-After": "1"}))
    fake.fail_next("/v1/message", Reply(503, b""))
    fake.fail_next("/v1/message", Reply(200, b"", delay=3.0))  # hangs past okno's 1 s
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: fake.sent, within=40, what="delivered after three failures")
    assert len(fake.calls("/v1/message")) == 4
    assert [s["body"] for s in fake.sent] == ["Перевод зачислен."]
    ids = {c.headers["id"] for c in fake.calls("/v1/message")}
    assert len(ids) == 1  # every retry carries the same message UUID
    assert eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent")


def test_a_customer_apple_no_longer_knows_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeApple
) -> None:
    hook(live, text_message("Добрый день"))
    dialog = the_dialog(live)
    fake.unknown.add(CUSTOMER)
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(
        lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "failed", what="failed"
    )
    assert len(fake.calls("/v1/message")) == 1
    errors = live.get(
        f"/api/v1/channels/{live.channel_id}/errors",  # type: ignore[attr-defined]
        headers=bearer(staff_token(live, "root")),
    )
    assert "404" in errors.json()["errors"][0]["message"]


def test_the_check_signs_a_preUpload_without_messaging_anyone(
    live: TestClient, fake: FakeApple
) -> None:
    root = staff_token(live, "root")
    response = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert json.dumps(response.json(), ensure_ascii=False).find(BUSINESS_ID) >= 0
    assert fake.calls("/v1/preUpload") and not fake.calls("/v1/message")


def test_an_api_secret_that_is_not_base64_is_refused_when_added() -> None:
    from okno.channels import kinds
    from okno.errors import BadRequest

    adapter = kinds.adapter_for("apple")
    values = {"business_id": BUSINESS_ID, "msp_id": MSP_ID, "api_secret": "not base64 !!"}
    with pytest.raises(BadRequest) as refused:
        kinds.prepare_config(adapter, values, "k" * 32)
    assert refused.value.code == "invalid_setting"
    assert refused.value.fields["field"] == "api_secret"


def test_a_list_picker_pick_is_stored_as_the_option_the_customer_chose(live: TestClient) -> None:
    reply = {
        "v": 1,
        "type": "interactive",
        "id": "9d2f7a0e-2b0c-4b9e-8a51-6d0f1c3b7e22",
        "sourceId": CUSTOMER,
        "destinationId": BUSINESS_ID,
        "interactiveData": {
            "bid": BID,
            "data": {
                "listPicker": {
                    "sections": [
                        {
                            "title": "Выберите вариант",
                            "order": 0,
                            "multipleSelection": False,
                            "items": [
                                {
                                    "identifier": "okno:999999:1",
                                    "title": "Кредитная карта",
                                    "order": 1,
                                    "style": "default",
                                }
                            ],
                        }
                    ]
                },
                "replyMessage": {"title": "Кредитная карта", "style": "icon"},
                "version": "1.0",
                "requestIdentifier": "4e0b7d61-5d0c-4d8f-9f57-2a4b8f6c1d10",
            },
        },
    }
    assert hook(live, reply).status_code == 200
    (message,) = staff_messages(live, the_dialog(live)["id"])
    assert message["text"] == "Кредитная карта"
