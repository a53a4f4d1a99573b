"""Realtime streams: live delivery, catch-up after a seq, visibility, and the replay check."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session


def until(ws: Any, wanted: str) -> dict:
    """Receive envelopes until one of type ``wanted`` arrives (bounded)."""
    for _ in range(50):
        event = ws.receive_json()
        if event["type"] == wanted:
            return dict(event)
    raise AssertionError(f"no {wanted} event")


def test_operator_gets_customer_message_live_and_customer_gets_reply_live(
    client: TestClient,
) -> None:
    anna = staff_token(client, "anna")
    session = widget_session(client)
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as staff_ws:
        assert staff_ws.receive_json()["type"] == "stream.ready"
        message = customer_says(client, session["session_token"], "Где мой перевод?")
        created = until(staff_ws, "conversation.created")
        assert created["conversation_id"] == message["conversation_id"]
        live = until(staff_ws, "message.created")
        assert live["payload"]["message"]["text"] == "Где мой перевод?"
        assert live["seq"] == live["payload"]["message"]["seq"] == message["seq"]
    with client.websocket_connect(
        f"/api/v1/widget/ws?token={session['session_token']}"
    ) as customer_ws:
        assert customer_ws.receive_json()["type"] == "stream.ready"
        client.post(
            f"/api/v1/conversations/{message['conversation_id']}/messages",
            json={"client_msg_id": cmid(), "text": "Перевод зачислен"},
            headers=bearer(anna),
        )
        assigned = until(customer_ws, "conversation.assigned")
        # the customer learns who answers, not the team, topic or other internal fields
        assert assigned["payload"]["conversation"] == {
            "id": message["conversation_id"],
            "status": "assigned",
            "assignee": {"name": "Анна"},
        }
        reply = until(customer_ws, "message.created")
        assert reply["payload"]["message"]["text"] == "Перевод зачислен"
        assert reply["payload"]["message"]["author_kind"] == "operator"


def test_reconnect_with_after_seq_catches_up_everything_missed(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    session = widget_session(client)
    first = customer_says(client, session["session_token"], "Первое")
    # offline now; two more messages arrive
    customer_says(client, session["session_token"], "Второе")
    customer_says(client, session["session_token"], "Третье")
    with client.websocket_connect(f"/api/v1/ws?token={anna}&after_seq={first['seq']}") as ws:
        texts = []
        while True:
            event = ws.receive_json()
            if event["type"] == "stream.ready":
                break
            if event["type"] == "message.created":
                texts.append(event["payload"]["message"]["text"])
        assert texts == ["Второе", "Третье"]


def test_customer_stream_does_not_show_internal_notes_or_other_customers(
    client: TestClient,
) -> None:
    anna = staff_token(client, "anna")
    mine = widget_session(client)
    other = widget_session(client)
    conv = customer_says(client, mine["session_token"], "Мой вопрос")["conversation_id"]
    customer_says(client, other["session_token"], "Чужой вопрос")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "заметка для своих", "internal": True},
        headers=bearer(anna),
    )
    with client.websocket_connect(
        f"/api/v1/widget/ws?token={mine['session_token']}&after_seq=0"
    ) as ws:
        seen = []
        while (event := ws.receive_json())["type"] != "stream.ready":
            seen.append(event)
    texts = [e["payload"]["message"]["text"] for e in seen if e["type"] == "message.created"]
    assert texts == ["Мой вопрос"]


def test_forged_token_gets_an_error_envelope(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/ws?token=forged.token.here") as ws:
        event = ws.receive_json()
    assert event["type"] == "stream.error" and event["payload"]["code"] == "token_invalid"


def test_events_after_returns_only_newer_and_visible(client: TestClient) -> None:
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    session = widget_session(client)
    msg = customer_says(client, session["session_token"], "Вопрос")
    client.post(
        f"/api/v1/conversations/{msg['conversation_id']}/messages",
        json={"client_msg_id": cmid(), "text": "Ответ"},
        headers=bearer(anna),
    )
    everything = client.get("/api/v1/events?after_seq=0", headers=bearer(anna)).json()
    seqs = [e["seq"] for e in everything["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert everything["last_seq"] >= seqs[-1]
    later = client.get(f"/api/v1/events?after_seq={seqs[1]}", headers=bearer(anna)).json()
    assert [e["seq"] for e in later["events"]] == seqs[2:]
    # olga (team Кредиты) saw the dialog while it was unassigned, not anna's reply after
    olga_types = [
        e["type"]
        for e in client.get("/api/v1/events?after_seq=0", headers=bearer(olga)).json()["events"]
    ]
    assert "conversation.created" in olga_types
    olga_texts = [
        e["payload"]["message"]["text"]
        for e in client.get("/api/v1/events?after_seq=0", headers=bearer(olga)).json()["events"]
        if e["type"] == "message.created"
    ]
    assert olga_texts == ["Вопрос"]


def test_replaying_events_rebuilds_what_the_api_shows(client: TestClient) -> None:
    """State before + events = state re-read: an operator list kept only from events
    matches a fresh fetch (what the realtime UI relies on)."""
    sveta = staff_token(client, "sveta")
    anna = staff_token(client, "anna")
    igor_id = client.get("/api/v1/users", headers=bearer(sveta)).json()["users"]
    igor = next(u["id"] for u in igor_id if u["login"] == "igor")
    before = {
        c["id"]: c
        for c in client.get("/api/v1/conversations?status=all", headers=bearer(sveta)).json()[
            "conversations"
        ]
    }
    start = client.get("/api/v1/events?after_seq=0", headers=bearer(sveta)).json()["last_seq"]
    a = customer_says(client, widget_session(client)["session_token"], "Один")["conversation_id"]
    b = customer_says(client, widget_session(client)["session_token"], "Два")["conversation_id"]
    client.post(
        f"/api/v1/conversations/{a}/messages",
        json={"client_msg_id": cmid(), "text": "Ок"},
        headers=bearer(anna),
    )
    client.post(
        f"/api/v1/conversations/{a}/transfer", json={"to_user_id": igor}, headers=bearer(anna)
    )
    client.post(f"/api/v1/conversations/{b}/close", headers=bearer(sveta))
    state = dict(before)
    for event in client.get(f"/api/v1/events?after_seq={start}", headers=bearer(sveta)).json()[
        "events"
    ]:
        if event["type"].startswith("conversation."):
            conv = event["payload"]["conversation"]
            state[conv["id"]] = conv
        elif event["type"] == "message.created":
            m = event["payload"]["message"]
            if not m["internal"]:
                state[m["conversation_id"]]["last_message_preview"] = m["text"]
                state[m["conversation_id"]]["last_message_at"] = m["created_at"]
    fresh = {
        c["id"]: c
        for c in client.get("/api/v1/conversations?status=all", headers=bearer(sveta)).json()[
            "conversations"
        ]
    }
    assert state == fresh
