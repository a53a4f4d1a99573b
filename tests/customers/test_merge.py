"""An operator links two customers who are one person: found by name or by their id in a
channel, merged into one card with one history; refused while both have an open dialog
in the same channel, and only for staff who may see both."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.builders import Staff, bearer, cmid, customer_says, staff_token, widget_session
from tests.channels.fakes.telegram import TOKEN, message_update

SECRET = "wh-secret_0123456789"


def telegram_customer(client: TestClient, text: str, chat_id: int = 555001) -> dict[str, Any]:
    """A Telegram channel (once) and a customer writing to it; their open dialog."""
    root = bearer(staff_token(client, "root"))
    found = [c for c in client.get("/api/v1/channels", headers=root).json()["channels"]]
    channel = next((c for c in found if c["kind"] == "telegram"), None)
    if channel is None:
        channel = client.post(
            "/api/v1/channels",
            json={
                "kind": "telegram",
                "settings": {
                    "bot_token": TOKEN,
                    "webhook_secret": SECRET,
                    "api_base": "http://127.0.0.1:9",
                },
            },
            headers=root,
        ).json()
    response = client.post(
        f"/hooks/telegram/{channel['id']}",
        json=message_update(text, chat_id=chat_id),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 200, response.text
    dialogs = client.get("/api/v1/conversations?status=open", headers=root).json()
    return next(
        c
        for c in dialogs["conversations"]
        if c["channel"]["kind"] == "telegram" and c["last_message_preview"] == text
    )


def web_customer(client: TestClient, text: str) -> dict[str, Any]:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], text)["conversation_id"]
    root = bearer(staff_token(client, "root"))
    data: dict[str, Any] = client.get(f"/api/v1/conversations/{conv}", headers=root).json()
    data["session_token"] = session["session_token"]
    return data


def search(client: TestClient, token: str, q: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/customers", params={"q": q}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["customers"])


def test_operator_finds_the_telegram_customer_and_links_them_into_one_history(
    client: TestClient, staff: Staff
) -> None:
    tg = telegram_customer(client, "Здравствуйте, карта заблокирована")
    web = web_customer(client, "Это снова я, пишу с сайта")
    anna = staff_token(client, "anna")
    tg_id, web_id = tg["customer"]["id"], web["customer"]["id"]

    # found by a part of the name in any letter case, or by the Telegram chat id
    for q in ("иван", "Петров", "555001"):
        assert [c["id"] for c in search(client, anna, q)] == [tg_id], q
    (brief,) = search(client, anna, "иван")
    assert brief["name"] == "Иван Петров" and brief["dialogs"] == 1
    assert [i["channel_kind"] for i in brief["identities"]] == ["telegram"]
    # a web visitor's id resumes their chat: it is no search key
    visitor = client.get(f"/api/v1/customers/{web_id}", headers=bearer(anna)).json()
    assert search(client, anna, f"#{web_id}")[0]["id"] == web_id
    assert visitor["name"].startswith("Клиент #")

    merged = client.post(
        f"/api/v1/customers/{web_id}/merge", json={"other_id": tg_id}, headers=bearer(anna)
    )
    assert merged.status_code == 200, merged.text
    card = merged.json()
    assert card["id"] == web_id
    assert card["name"] == "Иван Петров"  # the real name wins over "Клиент #N"
    assert sorted(i["channel_kind"] for i in card["identities"]) == ["telegram", "widget"]
    assert {d["id"] for d in card["dialogs"]} == {tg["id"], web["id"]}

    # one history across both channels, from either id (the old one follows the merge)
    for customer_id in (web_id, tg_id):
        items = client.get(
            f"/api/v1/customers/{customer_id}/timeline", headers=bearer(anna)
        ).json()["items"]
        assert [
            (m["channel_kind"], m["text"]) for m in items if m["author_kind"] == "customer"
        ] == [
            ("telegram", "Здравствуйте, карта заблокирована"),
            ("widget", "Это снова я, пишу с сайта"),
        ]
    assert client.get(f"/api/v1/customers/{tg_id}", headers=bearer(anna)).json()["id"] == web_id
    # the merged-away customer is found no more, the joined one is
    assert [c["id"] for c in search(client, anna, "иван")] == [web_id]
    # the Telegram dialog now belongs to the joined customer, in the API and live
    moved = client.get(f"/api/v1/conversations/{tg['id']}", headers=bearer(anna)).json()
    assert moved["customer"]["id"] == web_id
    events = client.get("/api/v1/events?after_seq=0", headers=bearer(anna)).json()["events"]
    updated = [
        e
        for e in events
        if e["type"] == "conversation.updated" and e["conversation_id"] == tg["id"]
    ]
    assert updated and updated[-1]["payload"]["conversation"]["customer"]["id"] == web_id

    # doing it again (a double click) changes nothing
    again = client.post(
        f"/api/v1/customers/{web_id}/merge", json={"other_id": tg_id}, headers=bearer(anna)
    )
    assert again.status_code == 200 and again.json()["id"] == web_id

    # the customer writes in Telegram again: it lands with the joined customer
    next_tg = telegram_customer(client, "И ещё вопрос по карте")
    assert next_tg["customer"]["id"] == web_id


def test_two_open_dialogs_in_one_channel_are_not_merged_until_one_is_closed(
    client: TestClient, staff: Staff
) -> None:
    first = web_customer(client, "Первый вопрос")
    second = web_customer(client, "Второй вопрос")
    anna = staff_token(client, "anna")
    url = f"/api/v1/customers/{first['customer']['id']}/merge"
    body = {"other_id": second["customer"]["id"]}
    refused = client.post(url, json=body, headers=bearer(anna))
    assert refused.status_code == 409
    assert refused.json()["code"] == "merge_open_dialogs"
    assert "Acme Bank" in refused.json()["detail"]
    # nothing moved
    card = client.get(f"/api/v1/customers/{second['customer']['id']}", headers=bearer(anna))
    assert card.json()["id"] == second["customer"]["id"]
    assert [d["id"] for d in card.json()["dialogs"]] == [second["id"]]

    take = client.post(
        f"/api/v1/conversations/{second['id']}/assign", json={}, headers=bearer(anna)
    )
    assert take.status_code == 200, take.text
    closed = client.post(
        f"/api/v1/conversations/{second['id']}/close",
        json={"resolution": "resolved"},
        headers=bearer(anna),
    )
    assert closed.status_code == 200, closed.text
    merged = client.post(url, json=body, headers=bearer(anna))
    assert merged.status_code == 200, merged.text
    assert {d["id"] for d in merged.json()["dialogs"]} == {first["id"], second["id"]}


def test_merging_needs_sight_of_both_customers_and_sane_input(
    client: TestClient, staff: Staff
) -> None:
    mine = web_customer(client, "Вопрос Анне")
    other = telegram_customer(client, "Вопрос в Telegram", chat_id=555777)
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    # anna takes the web dialog: it becomes her team's, olga (another team) may not see it
    client.post(
        f"/api/v1/conversations/{mine['id']}/messages",
        json={"client_msg_id": cmid(), "text": "Здравствуйте!"},
        headers=bearer(anna),
    )
    mine_id, other_id = mine["customer"]["id"], other["customer"]["id"]
    denied = client.post(
        f"/api/v1/customers/{other_id}/merge", json={"other_id": mine_id}, headers=bearer(olga)
    )
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden_team"
    assert [c["id"] for c in search(client, olga, "#" + str(mine_id))] == []
    url = f"/api/v1/customers/{mine_id}/merge"
    same = client.post(url, json={"other_id": mine_id}, headers=bearer(anna))
    assert same.status_code == 400 and same.json()["code"] == "same_customer"
    missing = client.post(url, json={"other_id": 999999}, headers=bearer(anna))
    assert missing.status_code == 404
    for bad in ({}, {"other_id": 0}, {"other_id": "x"}, {"other_id": 1, "into": 2}):
        assert client.post(url, json=bad, headers=bearer(anna)).status_code == 422, bad
    short = client.get("/api/v1/customers", params={"q": "a"}, headers=bearer(anna))
    assert short.status_code == 422
    # nothing was merged by any of it
    assert client.get(f"/api/v1/customers/{other_id}", headers=bearer(anna)).json()["id"] == (
        other_id
    )


def test_a_web_visitor_merged_into_another_customer_keeps_their_chat(
    client: TestClient, staff: Staff
) -> None:
    tg = telegram_customer(client, "Пишу из Telegram", chat_id=555888)
    web = web_customer(client, "Пишу с сайта")
    anna = staff_token(client, "anna")
    merged = client.post(
        f"/api/v1/customers/{tg['customer']['id']}/merge",
        json={"other_id": web["customer"]["id"]},
        headers=bearer(anna),
    )
    assert merged.status_code == 200, merged.text
    # the visitor's token still names the old customer: the widget follows the merge
    token = web["session_token"]
    customer_says(client, token, "Вы меня слышите?")
    history = client.get("/api/v1/widget/messages", headers=bearer(token)).json()["messages"]
    assert [m["text"] for m in history if m["author_kind"] == "customer"] == [
        "Пишу с сайта",
        "Вы меня слышите?",
    ]
    client.post(
        f"/api/v1/conversations/{web['id']}/messages",
        json={"client_msg_id": cmid(), "text": "Слышу, Иван!"},
        headers=bearer(anna),
    )
    with client.websocket_connect(f"/api/v1/widget/ws?token={token}&after_seq=0") as ws:
        seen = []
        while True:
            event = ws.receive_json()
            seen.append(event)
            if event["type"] == "stream.ready":
                break
    texts = [e["payload"]["message"]["text"] for e in seen if e["type"] == "message.created"]
    assert "Слышу, Иван!" in texts
