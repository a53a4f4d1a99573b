"""The customer card: identities, history, notes, tags and attributes, under the team rule."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session


def test_card_shows_history_identities_and_hides_the_visitor_secret(client: TestClient) -> None:
    session = widget_session(client, visitor={"name": "Пётр Смирнов"})
    first = customer_says(client, session["session_token"], "Первый вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    client.post(f"/api/v1/conversations/{first}/close", headers=bearer(anna))
    second = customer_says(client, session["session_token"], "Второй вопрос")
    conv = client.get(
        f"/api/v1/conversations/{second['conversation_id']}", headers=bearer(anna)
    ).json()
    card = client.get(f"/api/v1/customers/{conv['customer']['id']}", headers=bearer(anna))
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["name"] == "Пётр Смирнов"
    assert [d["id"] for d in body["dialogs"]] == [second["conversation_id"], first]
    assert [d["last_message_preview"] for d in body["dialogs"]] == [
        "Второй вопрос",
        "Первый вопрос",
    ]
    (identity,) = body["identities"]
    assert identity["channel_kind"] == "widget"
    assert session["visitor_id"] not in card.text and identity["external_id"].startswith("•••")


def test_notes_tags_and_attributes_are_kept(client: TestClient) -> None:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    customer_id = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
        "customer"
    ]["id"]
    note = client.post(
        f"/api/v1/customers/{customer_id}/notes",
        json={"text": "Просит звонить после 18:00"},
        headers=bearer(anna),
    )
    assert note.status_code == 201 and note.json()["author_name"] == "Анна"
    patched = client.patch(
        f"/api/v1/customers/{customer_id}",
        json={
            "name": "Ирина",
            "tags": ["VIP", " vip ", "Зарплатный клиент"],
            "attributes": {"сегмент": "премиум", "город": "Казань"},
        },
        headers=bearer(anna),
    )
    assert patched.status_code == 200, patched.text
    again = client.patch(
        f"/api/v1/customers/{customer_id}",
        json={"attributes": {"город": None}},
        headers=bearer(anna),
    ).json()
    assert again["name"] == "Ирина"
    assert again["tags"] == ["vip", "зарплатный клиент"]
    assert again["attributes"] == {"сегмент": "премиум"}
    assert [n["text"] for n in again["notes"]] == ["Просит звонить после 18:00"]
    # notes never reach the customer
    history = client.get("/api/v1/widget/messages", headers=bearer(session["session_token"])).text
    assert "после 18:00" not in history


def test_operator_of_another_team_cannot_open_the_card(client: TestClient) -> None:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Вопрос")["conversation_id"]
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Беру"},
        headers=bearer(anna),
    )
    customer_id = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
        "customer"
    ]["id"]
    denied = client.get(f"/api/v1/customers/{customer_id}", headers=bearer(olga))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden_team"
    assert client.get("/api/v1/customers/999999", headers=bearer(anna)).status_code == 404


def test_reopen_and_set_topic_and_tags(client: TestClient) -> None:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    patched = client.patch(
        f"/api/v1/conversations/{conv}",
        json={"topic": "cards", "tags": ["Жалоба", "жалоба"]},
        headers=bearer(anna),
    )
    assert patched.status_code == 200 and patched.json()["topic"] == "cards"
    assert patched.json()["tags"] == ["жалоба"]
    client.post(f"/api/v1/conversations/{conv}/close", headers=bearer(anna))
    reopened = client.post(f"/api/v1/conversations/{conv}/reopen", headers=bearer(anna))
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "assigned" and reopened.json()["closed_at"] is None
    # the customer wrote again after a second close: the old dialog cannot be reopened
    client.post(f"/api/v1/conversations/{conv}/close", headers=bearer(anna))
    customer_says(client, session["session_token"], "Ещё вопрос")
    clash = client.post(f"/api/v1/conversations/{conv}/reopen", headers=bearer(anna))
    assert clash.status_code == 409 and clash.json()["code"] == "customer_has_open_dialog"
