"""VK contract tests: documented Callback API events in; the exact API requests out, against
a fake VK API on loopback; the confirmation handshake; forged, replayed and malformed
events; read statuses; faults (error 6, 5xx, a timeout after VK took the message, a customer
who never allowed messages)."""

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
from tests.channels.fakes.vk import (
    CONFIRMATION,
    GROUP_ID,
    OWNER,
    SECRET,
    TOKEN,
    FakeVk,
    confirmation,
    encode,
    event,
    message_new,
    message_read,
)
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.channels.test_telegram import JPEG
from tests.channels.test_widget_api import PDF, PNG
from tests.conftest import make_settings


@pytest.fixture
def fake() -> Iterator[FakeVk]:
    platform = FakeVk().start()
    yield platform
    platform.stop()


@contextmanager
def _client(settings: Settings, fake: FakeVk, **values: Any) -> Iterator[TestClient]:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )
    channel_id = add_channel(
        fast,
        "vk",
        access_token=TOKEN,
        group_id=str(GROUP_ID),
        confirmation_code=CONFIRMATION,
        secret_key=SECRET,
        api_base=fake.url,
        **values,
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def live(settings: Settings, staff: Staff, fake: FakeVk) -> Iterator[TestClient]:
    """okno with its worker, one VK community channel pointed at the fake."""
    with _client(settings, fake) as client:
        yield client


def hook(client: TestClient, body: Any, raw: bytes | None = None):
    return client.post(
        f"/hooks/vk/{client.channel_id}",  # type: ignore[attr-defined]
        content=raw if raw is not None else encode(body),
        headers={"Content-Type": "application/json"},
    )


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


def test_the_confirmation_event_is_answered_with_the_code_as_plain_text(live: TestClient) -> None:
    response = hook(live, confirmation())
    assert response.status_code == 200
    assert response.text == CONFIRMATION
    assert response.headers["content-type"].startswith("text/plain")
    # someone who does not know the secret, or asks for another community, learns nothing
    assert hook(live, confirmation(secret="guess")).status_code == 403
    assert hook(live, confirmation(secret=None)).status_code == 403
    assert hook(live, confirmation(group_id=1)).status_code == 403


def test_a_message_lands_in_the_workspace_and_vk_hears_ok(live: TestClient) -> None:
    response = hook(live, message_new("Здравствуйте, как закрыть вклад?"))
    assert response.status_code == 200
    assert response.text == "ok"
    dialog = the_dialog(live)
    assert dialog["channel"]["kind"] == "vk"
    texts = [m["text"] for m in staff_messages(live, dialog["id"])]
    assert texts == ["Здравствуйте, как закрыть вклад?"]


def test_the_operators_answer_leaves_as_one_messages_send(live: TestClient, fake: FakeVk) -> None:
    hook(live, message_new("Какой лимит по карте?", user_id=7001))
    take_and_reply(live, the_dialog(live)["id"], "150 000 ₽ в сутки.")
    (call,) = fake.wait_for("/method/messages.send")
    assert call.method == "POST"
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.query == {}  # the token travels in the body, never in the URL
    form = call.form()
    random_id = form.pop("random_id")
    assert form == {
        "peer_id": "7001",
        "message": "150 000 ₽ в сутки.",
        "access_token": TOKEN,
        "v": "5.199",
    }
    assert random_id.isdigit() and 0 < int(random_id) < 2**63
    assert eventually(lambda: last_delivery(live, the_dialog(live)["id"]) == "sent")


def test_forged_foreign_and_malformed_events_store_nothing(live: TestClient) -> None:
    good = message_new("Помогите")
    assert hook(live, dict(good, secret="wrong")).status_code == 403
    assert hook(live, event("message_new", good["object"], secret=None)).status_code == 403
    other_group = dict(good, group_id=GROUP_ID + 1)
    assert hook(live, other_group).json()["code"] == "bad_signature"
    assert hook(live, None, raw=b'{"type": "message_new", "object": ').status_code == 400
    assert hook(live, [good]).status_code == 400
    assert hook(live, event("message_new", None)).status_code == 400
    broken = message_new("x")
    broken["object"]["message"]["from_id"] = "1234567"
    assert hook(live, broken).json()["code"] == "malformed_webhook"
    no_type = message_new("x")
    del no_type["type"]
    assert hook(live, no_type).status_code == 400
    assert message_count(live.app.state.okno.settings) == 0


def test_vks_retry_of_an_event_is_stored_once(live: TestClient) -> None:
    body = message_new("Дойдёт дважды?")
    assert hook(live, body).text == "ok"
    assert hook(live, body).text == "ok"  # VK got no answer in time and sent it again
    dialog = the_dialog(live)
    assert [m["text"] for m in staff_messages(live, dialog["id"])] == ["Дойдёт дважды?"]


def test_group_chats_and_other_events_are_acknowledged_and_ignored(live: TestClient) -> None:
    in_chat = message_new("всем привет", peer_id=2000000005)
    assert hook(live, in_chat).text == "ok"
    assert hook(live, event("message_typing_state", {"state": "typing"})).text == "ok"
    assert hook(live, event("message_allow", {"user_id": 1, "key": "x"})).text == "ok"
    assert message_count(live.app.state.okno.settings) == 0


def test_photos_documents_voice_and_a_location_are_received(live: TestClient, fake: FakeVk) -> None:
    photo_url = fake.add_file("photo_big.jpg", JPEG)
    doc_url = fake.add_file("doc.pdf", PDF)
    voice_url = fake.add_file("voice.ogg", b"OggS\x00\x02" + b"\x00" * 60)
    photo = {
        "type": "photo",
        "photo": {
            "id": 457239017,
            "owner_id": 7002,
            "access_key": "abc",
            "sizes": [
                {"type": "s", "url": fake.add_file("small.jpg", b"x"), "width": 75, "height": 50},
                {"type": "z", "url": photo_url, "width": 1280, "height": 853},
            ],
        },
    }
    doc = {
        "type": "doc",
        "doc": {
            "id": 5,
            "owner_id": 7002,
            "title": "выписка",
            "size": len(PDF),
            "ext": "pdf",
            "url": doc_url,
            "type": 1,
        },
    }
    voice = {
        "type": "audio_message",
        "audio_message": {"id": 9, "owner_id": 7002, "duration": 3, "link_ogg": voice_url},
    }
    hook(live, message_new("Скриншот и выписка", user_id=7002, attachments=[photo, doc]))
    hook(live, message_new("", user_id=7002, attachments=[voice]))
    geo = {"type": "point", "coordinates": {"latitude": 59.9386, "longitude": 30.3141}}
    hook(live, message_new("", user_id=7002, geo=geo))
    messages = eventually(
        lambda: len(m := staff_messages(live, the_dialog(live)["id"])) == 3 and m, what="3"
    )
    first = messages[0]
    assert first["text"] == "Скриншот и выписка"
    names = sorted(a["filename"] for a in first["attachments"])
    assert names == ["photo_457239017.jpg", "выписка.pdf"]
    assert fake.calls("/files/small.jpg") == []  # the biggest size is taken
    root = staff_token(live, "root")
    photo_att = next(a for a in first["attachments"] if a["content_type"] == "image/jpeg")
    assert live.get(photo_att["url"], headers=bearer(root)).content == JPEG
    assert [a["content_type"] for a in messages[1]["attachments"]] == ["audio/ogg"]
    assert messages[2]["meta"]["location"] == {"lat": 59.9386, "lon": 30.3141}


def test_bot_buttons_become_an_inline_keyboard_and_a_press_continues_the_flow(
    settings: Settings, staff: Staff, fake: FakeVk
) -> None:
    import json

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
        hook(client, message_new("потерял карту", user_id=7003))
        (first,) = fake.wait_for("/method/messages.send")
        keyboard = json.loads(first.form()["keyboard"])
        assert keyboard["inline"] is True
        rows = keyboard["buttons"]
        assert rows and all(len(row) == 1 for row in rows)
        action = rows[0][0]["action"]
        assert action["type"] == "text" and len(action["label"]) <= 40
        assert json.loads(action["payload"])["okno"].startswith("okno:")
        # VK sends the label as the text and the payload as a JSON string
        press = message_new(action["label"], user_id=7003, payload=action["payload"])
        assert hook(client, press).text == "ok"
        calls = fake.wait_for("/method/messages.send", 2)
        assert calls[1].form()["peer_id"] == "7003"
        dialog = eventually(lambda: conversations(client, "root", "all"), what="dialog")
        said = [
            m for m in staff_messages(client, dialog[0]["id"]) if m["author_kind"] == "customer"
        ]
        assert said[1]["text"] == action["label"]


def test_message_read_marks_the_operators_message_read(live: TestClient, fake: FakeVk) -> None:
    hook(live, message_new("Алло", user_id=7004))
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Слушаем вас")
    eventually(lambda: last_delivery(live, dialog["id"]) == "sent", what="sent")
    sent_id = fake.sent[0]["message_id"]
    assert hook(live, message_read(sent_id, user_id=7004)).text == "ok"
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "read")
    hook(live, message_read(sent_id, user_id=7004))  # replayed: nothing changes
    assert last_delivery(live, dialog["id"]) == "read"


def test_an_operators_files_are_uploaded_and_attached(live: TestClient, fake: FakeVk) -> None:
    hook(live, message_new("Пришлите выписку и схему", user_id=7005))
    dialog = the_dialog(live)
    anna = staff_token(live, "anna")
    live.post(f"/api/v1/conversations/{dialog['id']}/assign", json={}, headers=bearer(anna))
    for name, data, ctype, text in (
        ("выписка.pdf", PDF, "application/pdf", "Ваша выписка"),
        ("схема.png", PNG, "image/png", ""),
    ):
        r = live.post(
            f"/api/v1/conversations/{dialog['id']}/attachments",
            data={"client_msg_id": cmid(), "text": text},
            files={"file": (name, data, ctype)},
            headers=bearer(anna),
        )
        assert r.status_code == 201, r.text
    calls = fake.wait_for("/method/messages.send", 2)
    doc_send, photo_send = calls[0].form(), calls[1].form()
    assert doc_send["message"] == "Ваша выписка"
    assert doc_send["attachment"].startswith(f"doc{OWNER}_")
    assert fake.docs[doc_send["attachment"]] == ("выписка.pdf", PDF)
    (doc_server,) = fake.calls("/method/docs.getMessagesUploadServer")
    assert doc_server.form()["peer_id"] == "7005" and doc_server.form()["type"] == "doc"
    assert "message" not in photo_send
    assert photo_send["attachment"].startswith(f"photo{OWNER}_")
    assert fake.docs[photo_send["attachment"]][1] == PNG


def test_error_6_a_5xx_and_a_timeout_are_retried_and_the_customer_gets_it_once(
    live: TestClient, fake: FakeVk
) -> None:
    hook(live, message_new("Где мой перевод?", user_id=7006))
    dialog = the_dialog(live)
    too_many = {"error": {"error_code": 6, "error_msg": "Too many requests per second"}}
    fake.fail_next("/method/messages.send", Reply(200, too_many))
    fake.fail_next("/method/messages.send", Reply(502, "Bad Gateway"))
    # VK takes the message but answers after okno gave up: okno sends it again with the
    # same random_id, and VK drops the repeat
    fake.slow_sends = 1
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: len(fake.calls("/method/messages.send")) >= 4, within=40, what="4 calls")
    assert eventually(lambda: last_delivery(live, dialog["id"]) == "sent", within=20)
    calls = fake.calls("/method/messages.send")
    assert len({c.form()["random_id"] for c in calls}) == 1
    assert [s["message"] for s in fake.sent] == ["Перевод зачислен."]


def test_a_customer_without_permission_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, fake: FakeVk
) -> None:
    hook(live, message_new("Добрый день", user_id=7007))
    dialog = the_dialog(live)
    fake.no_permission.add(7007)
    take_and_reply(live, dialog["id"], "Здравствуйте!")
    eventually(lambda: last_delivery(live, dialog["id"]) == "failed", what="failed")
    assert len(fake.calls("/method/messages.send")) == 1
    root = staff_token(live, "root")
    errors = live.get(f"/api/v1/channels/{live.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert "901" in errors.json()["errors"][0]["message"]


def test_check_asks_groups_get_by_id_and_a_revoked_token_is_reported(
    live: TestClient, fake: FakeVk
) -> None:
    root = staff_token(live, "root")
    r = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json() == {"ok": True, "detail": "Банк Окно"}
    (call,) = fake.calls("/method/groups.getById")
    assert call.form()["group_id"] == str(GROUP_ID)
    fake.token = "revoked"
    r = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.json()["ok"] is False and "error 5" in r.json()["detail"]


def test_settings_are_checked_and_each_channel_gets_its_own_random_id_seed(
    settings: Settings,
) -> None:
    from okno.channels.vk.adapter import random_id
    from okno.errors import BadRequest

    values = {
        "access_token": TOKEN,
        "confirmation_code": CONFIRMATION,
        "secret_key": SECRET,
    }
    with pytest.raises(BadRequest) as bad_group:
        add_channel(settings, "vk", group_id="club123", **values)
    assert bad_group.value.code == "invalid_setting"
    with pytest.raises(BadRequest) as old_version:
        add_channel(settings, "vk", group_id="1", api_version="5.80", **values)
    assert old_version.value.fields["field"] == "api_version"
    with pytest.raises(BadRequest) as no_secret:
        add_channel(settings, "vk", group_id="1", access_token=TOKEN, confirmation_code="c")
    assert no_secret.value.code == "missing_setting"
    one = {"random_id_seed": "a" * 32}
    two = {"random_id_seed": "b" * 32}
    assert random_id(one, 42) == random_id(one, 42)  # a resend is recognised
    assert random_id(one, 42) != random_id(two, 42)  # another installation does not clash
