"""Staff side of a conversation: list, open, reply, take, transfer, close, team rule."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.builders import Staff, bearer, cmid, customer_says, staff_token, widget_session


@pytest.fixture
def conversation(client: TestClient) -> dict:
    session = widget_session(client)
    message = customer_says(client, session["session_token"], "Не проходит платёж по карте")
    return {"id": message["conversation_id"], "token": session["session_token"]}


def reply(client: TestClient, token: str, conv: int, text: str, **extra: object):
    return client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": text, **extra},
        headers=bearer(token),
    )


def test_sign_in_with_wrong_password_is_401(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", json={"login": "anna", "password": "nope-nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "bad_credentials"
    unknown = client.post("/api/v1/auth/token", json={"login": "ghost", "password": "nope-nope"})
    assert unknown.status_code == 401 and unknown.json() == response.json()


def test_staff_endpoints_need_a_token(client: TestClient) -> None:
    response = client.get("/api/v1/conversations")
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"


def test_first_reply_takes_the_dialog_and_sets_first_response(
    client: TestClient, conversation: dict, staff: Staff
) -> None:
    anna = staff_token(client, "anna")
    waiting = client.get("/api/v1/conversations?status=waiting", headers=bearer(anna)).json()
    assert [c["id"] for c in waiting["conversations"]] == [conversation["id"]]
    response = reply(client, anna, conversation["id"], "Здравствуйте! Проверю платёж.")
    assert response.status_code == 201
    conv = client.get(f"/api/v1/conversations/{conversation['id']}", headers=bearer(anna)).json()
    assert conv["status"] == "assigned"
    assert conv["assignee"] == {"id": staff["anna"], "name": "Анна"}
    assert conv["first_response_at"] is not None
    mine = client.get("/api/v1/conversations?status=mine", headers=bearer(anna)).json()
    assert [c["id"] for c in mine["conversations"]] == [conversation["id"]]


def test_colleague_cannot_reply_into_a_taken_dialog(client: TestClient, conversation: dict) -> None:
    anna, igor = staff_token(client, "anna"), staff_token(client, "igor")
    assert reply(client, anna, conversation["id"], "Я взяла").status_code == 201
    response = reply(client, igor, conversation["id"], "И я тут")
    assert response.status_code == 403
    assert response.json()["code"] == "not_assignee"


def test_operator_of_another_team_gets_403_and_the_attempt_is_logged(
    client: TestClient, conversation: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    reply(client, anna, conversation["id"], "Беру")  # now the dialog belongs to team Поддержка
    capsys.readouterr()
    for path in ("", "/messages"):
        response = client.get(
            f"/api/v1/conversations/{conversation['id']}{path}", headers=bearer(olga)
        )
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden_team"
    logged = capsys.readouterr().out
    assert '"access.denied"' in logged and f'"conversation_id": {conversation["id"]}' in logged
    listed = client.get("/api/v1/conversations?status=all", headers=bearer(olga)).json()
    assert listed["conversations"] == []


def test_unknown_conversation_is_404(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    response = client.get("/api/v1/conversations/999999", headers=bearer(anna))
    assert response.status_code == 404


def test_internal_note_is_invisible_to_the_customer(client: TestClient, conversation: dict) -> None:
    anna = staff_token(client, "anna")
    assert reply(client, anna, conversation["id"], "Клиент VIP", internal=True).status_code == 201
    assert reply(client, anna, conversation["id"], "Сейчас посмотрю").status_code == 201
    staff_view = client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=bearer(anna)
    ).json()
    assert [m["text"] for m in staff_view["messages"]] == [
        "Не проходит платёж по карте",
        "Клиент VIP",
        "Сейчас посмотрю",
    ]
    customer_view = client.get(
        "/api/v1/widget/messages", headers=bearer(conversation["token"])
    ).json()
    assert [m["text"] for m in customer_view["messages"]] == [
        "Не проходит платёж по карте",
        "Сейчас посмотрю",
    ]


def test_transfer_to_operator_with_comment(
    client: TestClient, conversation: dict, staff: Staff
) -> None:
    anna, igor = staff_token(client, "anna"), staff_token(client, "igor")
    reply(client, anna, conversation["id"], "Минуту")
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/transfer",
        json={"to_user_id": staff["igor"], "comment": "вопрос по валютному счёту"},
        headers=bearer(anna),
    )
    assert response.status_code == 200
    assert response.json()["assignee"]["id"] == staff["igor"]
    assert reply(client, igor, conversation["id"], "Здравствуйте, я продолжу").status_code == 201
    assert reply(client, anna, conversation["id"], "Ещё я").status_code == 403
    notes = client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=bearer(igor)
    ).json()["messages"]
    system = [m for m in notes if m["author_kind"] == "system"]
    assert len(system) == 1 and "вопрос по валютному счёту" in system[0]["text"]
    assert system[0]["internal"] is True


def test_transfer_to_team_puts_it_back_in_queue(
    client: TestClient, conversation: dict, staff: Staff
) -> None:
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    reply(client, anna, conversation["id"], "Это к кредитам")
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/transfer",
        json={"to_team_id": staff.teams["Кредиты"]},
        headers=bearer(anna),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "waiting" and body["assignee"] is None
    assert body["team_id"] == staff.teams["Кредиты"]
    waiting = client.get("/api/v1/conversations?status=waiting", headers=bearer(olga)).json()
    assert [c["id"] for c in waiting["conversations"]] == [conversation["id"]]


def test_transfer_needs_exactly_one_target(
    client: TestClient, conversation: dict, staff: Staff
) -> None:
    anna = staff_token(client, "anna")
    for body in ({}, {"to_user_id": staff["igor"], "to_team_id": 1}):
        response = client.post(
            f"/api/v1/conversations/{conversation['id']}/transfer", json=body, headers=bearer(anna)
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/transfer",
        json={"to_user_id": 424242},
        headers=bearer(anna),
    )
    assert response.status_code == 404 and response.json()["code"] == "user_not_found"


def test_close_is_idempotent_and_blocks_replies(client: TestClient, conversation: dict) -> None:
    anna = staff_token(client, "anna")
    reply(client, anna, conversation["id"], "Готово")
    first = client.post(
        f"/api/v1/conversations/{conversation['id']}/close",
        json={"resolution": "resolved"},
        headers=bearer(anna),
    )
    assert first.status_code == 200 and first.json()["status"] == "closed"
    second = client.post(f"/api/v1/conversations/{conversation['id']}/close", headers=bearer(anna))
    assert second.status_code == 200 and second.json()["closed_at"] == first.json()["closed_at"]
    late = reply(client, anna, conversation["id"], "Ещё одно")
    assert late.status_code == 409 and late.json()["code"] == "conversation_closed"
    events = client.get("/api/v1/events?after_seq=0", headers=bearer(anna)).json()["events"]
    assert [e["type"] for e in events].count("conversation.closed") == 1


def test_bad_close_resolution_is_422(client: TestClient, conversation: dict) -> None:
    anna = staff_token(client, "anna")
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/close",
        json={"resolution": "whatever"},
        headers=bearer(anna),
    )
    assert response.status_code == 422


def test_take_and_supervisor_assign(client: TestClient, conversation: dict, staff: Staff) -> None:
    igor, sveta, anna = (staff_token(client, n) for n in ("igor", "sveta", "anna"))
    took = client.post(
        f"/api/v1/conversations/{conversation['id']}/assign", json={}, headers=bearer(igor)
    )
    assert took.json()["assignee"]["id"] == staff["igor"]
    stolen = client.post(
        f"/api/v1/conversations/{conversation['id']}/assign", json={}, headers=bearer(anna)
    )
    assert stolen.status_code == 409
    forbidden = client.post(
        f"/api/v1/conversations/{conversation['id']}/assign",
        json={"user_id": staff["anna"]},
        headers=bearer(igor),
    )
    assert forbidden.status_code == 403
    moved = client.post(
        f"/api/v1/conversations/{conversation['id']}/assign",
        json={"user_id": staff["anna"]},
        headers=bearer(sveta),
    )
    assert moved.status_code == 200 and moved.json()["assignee"]["id"] == staff["anna"]


def test_staff_reply_retry_is_stored_once(client: TestClient, conversation: dict) -> None:
    anna = staff_token(client, "anna")
    body = {"client_msg_id": "retry-1", "text": "Платёж прошёл"}
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    first = client.post(url, json=body, headers=bearer(anna))
    second = client.post(url, json=body, headers=bearer(anna))
    assert (first.status_code, second.status_code) == (201, 200)
    customer_view = client.get(
        "/api/v1/widget/messages", headers=bearer(conversation["token"])
    ).json()
    assert [m["text"] for m in customer_view["messages"]].count("Платёж прошёл") == 1


def test_operator_sends_a_pdf(client: TestClient, conversation: dict) -> None:
    from tests.channels.test_widget_api import PDF

    anna = staff_token(client, "anna")
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"client_msg_id": cmid(), "text": "Выписка"},
        files={"file": ("выписка.pdf", PDF, "application/pdf")},
        headers=bearer(anna),
    )
    assert response.status_code == 201, response.text
    att = response.json()["message"]["attachments"][0]
    got = client.get(att["url"], headers=bearer(conversation["token"]))
    assert got.status_code == 200 and got.content == PDF
    assert "attachment" in got.headers["content-disposition"]


def test_unknown_status_filter_is_400(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    response = client.get("/api/v1/conversations?status=bogus", headers=bearer(anna))
    assert response.status_code == 400 and response.json()["code"] == "invalid_status"
