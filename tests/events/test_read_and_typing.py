"""Read marks and typing signals, both ways."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session


def until(ws: Any, wanted: str) -> dict:
    for _ in range(50):
        event = ws.receive_json()
        if event["type"] == wanted:
            return dict(event)
    raise AssertionError(f"no {wanted}")


def test_unread_counter_and_read_marks_both_ways(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    customer_says(client, token, "Раз")
    last = customer_says(client, token, "Два")
    conv = last["conversation_id"]
    anna = staff_token(client, "anna")
    listed = client.get("/api/v1/conversations", headers=bearer(anna)).json()["conversations"][0]
    assert listed["unread"] == 2
    with client.websocket_connect(f"/api/v1/widget/ws?token={token}") as customer_ws:
        customer_ws.receive_json()
        read = client.post(
            f"/api/v1/conversations/{conv}/read",
            json={"up_to_seq": last["seq"]},
            headers=bearer(anna),
        )
        assert read.status_code == 200 and read.json()["unread"] == 0
        seen = until(customer_ws, "conversation.read")
        assert seen["payload"] == {"reader": "staff", "up_to_seq": last["seq"]}
    customer_says(client, token, "Три")
    assert client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()["unread"] == 1
    reply = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Ответ"},
        headers=bearer(anna),
    ).json()
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as staff_ws:
        staff_ws.receive_json()
        assert (
            client.post(
                "/api/v1/widget/read",
                json={"up_to_seq": reply["message"]["seq"]},
                headers=bearer(token),
            ).status_code
            == 204
        )
        seen = until(staff_ws, "conversation.read")
        assert (
            seen["payload"]["reader"] == "customer"
            and seen["payload"]["up_to_seq"] == reply["message"]["seq"]
        )
    assert (
        client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
            "customer_read_seq"
        ]
        == reply["message"]["seq"]
    )


def test_typing_reaches_the_other_side_but_not_for_notes(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    conv = customer_says(client, token, "Здравствуйте")["conversation_id"]
    anna = staff_token(client, "anna")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Добрый день"},
        headers=bearer(anna),
    )
    with (
        client.websocket_connect(f"/api/v1/ws?token={anna}") as staff_ws,
        client.websocket_connect(f"/api/v1/widget/ws?token={token}") as customer_ws,
    ):
        staff_ws.receive_json()
        customer_ws.receive_json()
        customer_ws.send_json({"type": "typing"})
        typing = until(staff_ws, "typing.started")
        assert typing["seq"] is None and typing["conversation_id"] == conv
        assert typing["payload"] == {"who": "customer"}
        staff_ws.send_json({"type": "typing", "conversation_id": conv, "internal": True})
        staff_ws.send_text("not json at all")  # ignored, the stream stays up
        staff_ws.send_json({"type": "typing", "conversation_id": conv})  # within 2 s: dropped
        # a durable event after them proves the note typing never reached the customer
        client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": cmid(), "text": "Проверяю"},
            headers=bearer(anna),
        )
        event = customer_ws.receive_json()
        assert event["type"] == "message.created"


def test_operator_typing_reaches_the_customer(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    conv = customer_says(client, token, "Здравствуйте")["conversation_id"]
    anna = staff_token(client, "anna")
    with (
        client.websocket_connect(f"/api/v1/ws?token={anna}") as staff_ws,
        client.websocket_connect(f"/api/v1/widget/ws?token={token}") as customer_ws,
    ):
        staff_ws.receive_json()
        customer_ws.receive_json()
        staff_ws.send_json({"type": "typing", "conversation_id": conv})
        typing = until(customer_ws, "typing.started")
        assert typing["payload"] == {"who": "operator"}


def test_typing_into_another_teams_dialog_is_ignored(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    conv = customer_says(client, token, "Здравствуйте")["conversation_id"]
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Беру"},
        headers=bearer(anna),
    )
    with (
        client.websocket_connect(f"/api/v1/ws?token={olga}") as olga_ws,
        client.websocket_connect(f"/api/v1/widget/ws?token={token}") as customer_ws,
    ):
        olga_ws.receive_json()
        customer_ws.receive_json()
        olga_ws.send_json({"type": "typing", "conversation_id": conv})
        client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": cmid(), "text": "Ещё"},
            headers=bearer(anna),
        )
        assert customer_ws.receive_json()["type"] == "message.created"
