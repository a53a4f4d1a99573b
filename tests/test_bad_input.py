"""Input that would break the database gets a clear 4xx: huge ids, NUL characters, marks
beyond what exists."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.builders import Staff, bearer, cmid, customer_says, staff_token, widget_session

HUGE = 9223372036854775808


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", f"/api/v1/conversations/{HUGE}", None),
        ("get", "/api/v1/conversations/2147483648", None),
        ("get", f"/api/v1/conversations?before_id={HUGE}", None),
        ("get", f"/api/v1/events?after_seq={HUGE}", None),
        ("get", f"/api/v1/attachments/{HUGE}", None),
        ("post", "/api/v1/conversations/1/transfer", {"to_team_id": HUGE}),
        ("post", "/api/v1/conversations/1/assign", {"user_id": HUGE}),
        ("post", "/api/v1/conversations/1/read", {"up_to_seq": HUGE}),
    ],
)
def test_out_of_range_numbers_are_422(
    client: TestClient, method: str, path: str, body: object
) -> None:
    anna = staff_token(client, "anna")
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(path, headers=bearer(anna), **kwargs)
    assert response.status_code == 422, response.text


def test_nul_characters_never_reach_the_database(client: TestClient) -> None:
    assert (
        client.post(
            "/api/v1/auth/token", json={"login": "ghost\u0000", "password": "x"}
        ).status_code
        == 401
    )
    assert (
        client.post("/api/v1/widget/sessions", json={"widget_key": "no\u0000pe"}).status_code == 404
    )
    assert client.get("/api/v1/widget/config?key=ac%00me").status_code == 422
    named = client.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "visitor": {"name": "Ив\u0000ан"}}
    )
    assert named.status_code == 200
    conv = customer_says(client, named.json()["session_token"], "Вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    patched = client.patch(
        f"/api/v1/conversations/{conv}", json={"topic": "ca\u0000rds"}, headers=bearer(anna)
    )
    assert patched.status_code == 200 and patched.json()["topic"] == "cards"
    assert (
        client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()["customer"]["name"]
        == "Иван"
    )


def test_read_mark_cannot_run_ahead_of_the_messages(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    conv = customer_says(client, token, "Вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    client.post("/api/v1/widget/read", json={"up_to_seq": 10**12}, headers=bearer(token))
    reply = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Ответ"},
        headers=bearer(anna),
    ).json()
    before = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
        "customer_read_seq"
    ]
    assert before < reply["message"]["seq"]  # the new reply is not shown as read
    client.post(
        "/api/v1/widget/read", json={"up_to_seq": reply["message"]["seq"]}, headers=bearer(token)
    )
    assert (
        client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
            "customer_read_seq"
        ]
        == reply["message"]["seq"]
    )


def test_transfer_to_a_supervisor_without_team_keeps_the_dialog_in_its_team(
    client: TestClient, staff: Staff
) -> None:
    conv = customer_says(client, widget_session(client)["session_token"], "Вопрос")[
        "conversation_id"
    ]
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Ответ"},
        headers=bearer(anna),
    )
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "VIP, не говорить клиенту", "internal": True},
        headers=bearer(anna),
    )
    moved = client.post(
        f"/api/v1/conversations/{conv}/transfer",
        json={"to_user_id": staff["sveta"]},
        headers=bearer(anna),
    )
    assert moved.status_code == 200 and moved.json()["team_id"] == staff.teams["Поддержка"]
    assert (
        client.get(f"/api/v1/conversations/{conv}/messages", headers=bearer(olga)).status_code
        == 403
    )


def test_reassigned_operator_learns_the_dialog_left_them(client: TestClient, staff: Staff) -> None:
    conv = customer_says(client, widget_session(client)["session_token"], "Вопрос")[
        "conversation_id"
    ]
    anna, sveta = staff_token(client, "anna"), staff_token(client, "sveta")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Ответ"},
        headers=bearer(anna),
    )
    start = client.get("/api/v1/events?after_seq=0", headers=bearer(anna)).json()["last_seq"]
    client.post(
        f"/api/v1/conversations/{conv}/assign",
        json={"user_id": staff["igor"]},
        headers=bearer(sveta),
    )
    events = client.get(f"/api/v1/events?after_seq={start}", headers=bearer(anna)).json()["events"]
    assert [e["type"] for e in events] == ["conversation.assigned"]
    assert events[0]["payload"]["conversation"]["assignee"]["id"] == staff["igor"]
