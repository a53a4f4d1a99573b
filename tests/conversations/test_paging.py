"""Paging a dialog from its end: the workspace opens a long dialog with its newest messages
and loads earlier ones on demand, without losing the forward cursor."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session

NEWEST = 9007199254740991  # Number.MAX_SAFE_INTEGER: "before everything" from JavaScript


@pytest.fixture
def dialog(client: TestClient) -> dict[str, Any]:
    """A dialog of 12 messages: customer questions, operator answers and internal notes."""
    session = widget_session(client)
    token = session["session_token"]
    conv = customer_says(client, token, "Вопрос 1")["conversation_id"]
    anna = staff_token(client, "anna")
    for i in range(2, 13):
        if i % 3 == 0:
            response = client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": cmid(), "text": f"Заметка {i}", "internal": True},
                headers=bearer(anna),
            )
            assert response.status_code == 201, response.text
        elif i % 3 == 1:
            response = client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": cmid(), "text": f"Ответ {i}"},
                headers=bearer(anna),
            )
            assert response.status_code == 201, response.text
        else:
            customer_says(client, token, f"Вопрос {i}")
    return {"id": conv, "anna": anna, "token": token}


def page(client: TestClient, token: str, conv: int, **params: Any) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/conversations/{conv}/messages", params=params, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def texts(body: dict[str, Any]) -> list[str]:
    return [m["text"] for m in body["messages"]]


def test_reading_back_from_the_end_gives_every_message_once_in_order(
    client: TestClient, dialog: dict[str, Any]
) -> None:
    conv, anna = dialog["id"], dialog["anna"]
    everything = page(client, anna, conv)
    assert len(everything["messages"]) == 12 and everything["has_more"] is False
    newest = page(client, anna, conv, before_seq=NEWEST, limit=5)
    assert texts(newest) == texts(everything)[-5:]
    seqs = [m["seq"] for m in newest["messages"]]
    assert seqs == sorted(seqs)
    assert newest["has_more"] is True
    # the tail page reaches the present: its cursor is where the forward stream goes on
    assert newest["last_seq"] >= seqs[-1]

    collected = newest["messages"]
    cursor = collected[0]["seq"]
    pages = 1
    while True:
        earlier = page(client, anna, conv, before_seq=cursor, limit=5)
        assert all(m["seq"] < cursor for m in earlier["messages"])
        # a page from the middle is complete up to just before its cursor
        assert earlier["last_seq"] == cursor - 1
        collected = earlier["messages"] + collected
        pages += 1
        if not earlier["has_more"]:
            break
        cursor = earlier["messages"][0]["seq"]
    assert pages == 3
    assert [m["id"] for m in collected] == [m["id"] for m in everything["messages"]]
    assert "Заметка 3" in texts(everything)  # internal notes are part of the staff history


def test_the_tail_cursor_continues_forward_without_a_gap(
    client: TestClient, dialog: dict[str, Any]
) -> None:
    conv, anna = dialog["id"], dialog["anna"]
    tail = page(client, anna, conv, before_seq=NEWEST, limit=3)
    customer_says(client, dialog["token"], "Новый вопрос")
    after = page(client, anna, conv, after_seq=tail["last_seq"])
    assert texts(after) == ["Новый вопрос"] and after["has_more"] is False


def test_forward_pages_say_when_more_follow(client: TestClient, dialog: dict[str, Any]) -> None:
    conv, anna = dialog["id"], dialog["anna"]
    first = page(client, anna, conv, after_seq=0, limit=5)
    assert texts(first)[0] == "Вопрос 1" and len(first["messages"]) == 5
    assert first["has_more"] is True and first["last_seq"] == first["messages"][-1]["seq"]
    second = page(client, anna, conv, after_seq=first["last_seq"], limit=7)
    assert len(second["messages"]) == 7 and second["has_more"] is False
    assert second["messages"][0]["seq"] > first["last_seq"]
    assert second["last_seq"] >= second["messages"][-1]["seq"]


def test_a_short_dialog_fits_one_backward_page(client: TestClient) -> None:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Один вопрос")["conversation_id"]
    anna = staff_token(client, "anna")
    body = page(client, anna, conv, before_seq=NEWEST)
    assert texts(body) == ["Один вопрос"] and body["has_more"] is False
    nothing = page(client, anna, conv, before_seq=body["messages"][0]["seq"])
    assert nothing["messages"] == [] and nothing["has_more"] is False


def test_both_cursors_or_bad_cursors_are_refused(
    client: TestClient, dialog: dict[str, Any]
) -> None:
    conv, anna = dialog["id"], dialog["anna"]
    url = f"/api/v1/conversations/{conv}/messages"
    both = client.get(f"{url}?after_seq=0&before_seq=10", headers=bearer(anna))
    assert both.status_code == 400 and both.json()["code"] == "conflicting_cursors"
    for query in ("before_seq=-1", "before_seq=abc", f"before_seq={2**63}", "limit=0"):
        response = client.get(f"{url}?{query}", headers=bearer(anna))
        assert response.status_code == 422, (query, response.text)
        assert response.json()["code"] == "invalid_request"


def test_another_team_cannot_page_back_either(client: TestClient, dialog: dict[str, Any]) -> None:
    olga = staff_token(client, "olga")  # anna replied: the dialog is team Поддержка's
    response = client.get(
        f"/api/v1/conversations/{dialog['id']}/messages?before_seq={NEWEST}",
        headers=bearer(olga),
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden_team"
