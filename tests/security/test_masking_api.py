"""Personal data is masked on every way out to staff — message lists, the message a staff
member just sent, dialog previews, the event stream (catch-up and WebSocket, which the
workspace's notifications read), the customer card, search results and the timeline — while
the database and the customer's own screen keep the text as written."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels.models import Channel
from okno.conversations.models import Message
from okno.settings import Settings
from tests.builders import (
    Staff,
    bearer,
    cmid,
    customer_says,
    in_db,
    make_message,
    staff_token,
    widget_session,
)

CARD = "4276 3800 1234 5679"
PHONE = "+7 (916) 123-45-67"
PASSPORT = "паспорт 45 06 123456"
EMAIL = "ivan.petrov@mail.ru"
TEXT = f"Карта {CARD}, тел. {PHONE}, {PASSPORT}, почта {EMAIL}"
RAW = ("4276 3800 1234 5679", "123-45-67", "45 06 123456", "ivan.petrov@mail.ru", "916")
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def assert_masked(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)


def test_staff_see_masked_messages_and_previews_the_customer_sees_their_own(
    client: TestClient, settings: Settings
) -> None:
    token = widget_session(client)["session_token"]
    own = customer_says(client, token, TEXT)
    conv = own["conversation_id"]
    assert own["text"] == TEXT and own["masked"] is False  # the customer's echo
    sveta = bearer(staff_token(client, "sveta"))

    (staff_view,) = client.get(f"/api/v1/conversations/{conv}/messages", headers=sveta).json()[
        "messages"
    ]
    assert staff_view["masked"] is True
    assert staff_view["text"] == (
        "Карта •••• 5679, тел. [телефон], паспорт [паспорт], почта i•••@mail.ru"
    )

    listed = client.get("/api/v1/conversations?status=all", headers=sveta).json()
    (row,) = [c for c in listed["conversations"] if c["id"] == conv]
    assert_masked(row["last_message_preview"])
    assert "•••• 5679" in row["last_message_preview"]
    assert_masked(
        client.get(f"/api/v1/conversations/{conv}", headers=sveta).json()["last_message_preview"]
    )

    # the customer's own history is whole; so is the database
    (widget_view,) = client.get(
        "/api/v1/widget/messages?after_seq=0", headers=bearer(token)
    ).json()["messages"]
    assert widget_view["text"] == TEXT

    async def stored(session: AsyncSession) -> list[str]:
        return list(
            await session.scalars(select(Message.text).where(Message.conversation_id == conv))
        )

    assert in_db(settings, stored) == [TEXT]


def test_staff_event_stream_is_masked_the_customer_stream_is_not(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    sveta_token = staff_token(client, "sveta")
    with (
        client.websocket_connect(f"/api/v1/ws?token={sveta_token}") as ws,
        client.websocket_connect(f"/api/v1/widget/ws?token={token}") as customer_ws,
    ):
        conv = customer_says(client, token, TEXT)["conversation_id"]
        staff_created = _next_message_event(ws)
        customer_created = _next_message_event(customer_ws)
    # what the workspace puts in its notification and inbox line
    assert_masked(staff_created["payload"]["message"]["text"])
    assert staff_created["payload"]["message"]["masked"] is True
    assert customer_created["payload"]["message"]["text"] == TEXT

    caught_up = client.get("/api/v1/events?after_seq=0", headers=bearer(sveta_token)).json()
    staff_events = [e for e in caught_up["events"] if e["conversation_id"] == conv]
    assert {e["type"] for e in staff_events} >= {"conversation.created", "message.created"}
    for event in staff_events:
        payload = event["payload"]
        if "message" in payload:
            assert_masked(payload["message"]["text"])
        if "conversation" in payload:
            assert_masked(payload["conversation"]["last_message_preview"])


def _next_message_event(ws: Any) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = ws.receive_json()
        if event.get("type") == "message.created":
            return event


def test_what_staff_send_comes_back_masked_and_reaches_the_customer_whole(
    client: TestClient,
) -> None:
    token = widget_session(client)["session_token"]
    conv = customer_says(client, token, "Какой номер карты вы видите?")["conversation_id"]
    sveta = bearer(staff_token(client, "sveta"))
    sent = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": f"Ваша карта {CARD}"},
        headers=sveta,
    )
    assert sent.status_code == 201
    assert sent.json()["message"]["text"] == "Ваша карта •••• 5679"
    attached = client.post(
        f"/api/v1/conversations/{conv}/attachments",
        files={"file": (f"выписка {EMAIL}.pdf", PDF, "application/pdf")},
        data={"client_msg_id": cmid()},
        headers=sveta,
    )
    assert attached.status_code == 201, attached.text
    (att,) = attached.json()["message"]["attachments"]
    assert att["filename"] == "выписка i•••@mail.ru.pdf"
    assert attached.json()["message"]["masked"] is True
    texts = client.get("/api/v1/widget/messages?after_seq=0", headers=bearer(token)).json()
    assert f"Ваша карта {CARD}" in [m["text"] for m in texts["messages"]]
    names = [a["filename"] for m in texts["messages"] for a in m["attachments"]]
    assert names == [f"выписка {EMAIL}.pdf"]


def test_the_card_never_shows_a_phone_number_and_masks_notes_attributes_and_search(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    async def whatsapp_customer(session: AsyncSession) -> int:
        """A WhatsApp customer: their id in the channel is their phone number."""
        wa = Channel(kind="whatsapp", name="WhatsApp", config={})
        session.add(wa)
        await session.flush()
        message = await make_message(
            session, channel_id=wa.id, visitor="79161234567", text="мой паспорт 45 06 123456"
        )
        return message.conversation_id

    conv = in_db(settings, whatsapp_customer)
    sveta = bearer(staff_token(client, "sveta"))
    customer_id = client.get(f"/api/v1/conversations/{conv}", headers=sveta).json()["customer"][
        "id"
    ]
    patched = client.patch(
        f"/api/v1/customers/{customer_id}",
        json={
            "name": "Иван +79161234567",
            "attributes": {"phone": "+7 916 123-45-67", "segment": "VIP"},
        },
        headers=sveta,
    )
    assert patched.status_code == 200, patched.text
    note = client.post(
        f"/api/v1/customers/{customer_id}/notes",
        json={"text": f"просил перевыпустить карту {CARD}"},
        headers=sveta,
    )
    assert note.status_code == 201
    assert note.json()["text"] == f"просил перевыпустить карту {CARD}"  # the author's echo

    card = client.get(f"/api/v1/customers/{customer_id}", headers=sveta).json()
    whole = str(card)
    assert "9161234567" not in whole and "123-45-67" not in whole and CARD not in whole
    (identity,) = card["identities"]
    assert identity["channel_kind"] == "whatsapp" and identity["external_id"] == "[телефон]"
    assert card["attributes"] == {"phone": "[телефон]", "segment": "VIP"}
    assert card["name"] == "Иван [телефон]"
    assert card["notes"][0]["text"] == "просил перевыпустить карту •••• 5679"
    assert card["dialogs"][0]["last_message_preview"] == "мой паспорт [паспорт]"
    assert card["can_call"] is False

    found = client.get("/api/v1/customers?q=Иван", headers=sveta).json()["customers"]
    assert [c["name"] for c in found] == ["Иван [телефон]"]
    assert found[0]["identities"][0]["external_id"] == "[телефон]"

    timeline = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=sveta).json()
    assert [m["text"] for m in timeline["items"]] == ["мой паспорт [паспорт]"]
    assert all(m["masked"] for m in timeline["items"])
